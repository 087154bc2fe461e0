"""bookchat.fences: the one rule for where a fenced code block opens and ends."""

from __future__ import annotations

from bookchat.fences import fence_end, fence_parts, is_code


def test_a_fence_ends_at_a_closing_run_at_least_as_long() -> None:
    lines = ["````md", "```python", "x = 1", "```", "````", "after"]
    assert fence_end(lines, 0) == 4  # the inner ``` lines are its content
    assert fence_end(lines, 5) is None


def test_an_unclosed_fence_runs_to_the_end_and_gets_a_closing_line() -> None:
    lines = ["  ~~~", "  code", "  more"]
    assert fence_end(lines, 0) == 2
    assert fence_parts("\n".join(lines)) == ("  ~~~", ["  code", "  more"], "  ~~~")


def test_a_backtick_in_the_info_string_is_no_fence() -> None:
    assert fence_end(["``` a`b", "x", "```"], 0) is None
    assert fence_end(["~~~ a`b", "x", "~~~"], 0) == 2
    assert is_code("```bash\nls\n```")
    assert not is_code("Run `ls`:")
