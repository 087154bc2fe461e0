"""A --port that is not a port is one usage line saying so, the same for every command."""

from __future__ import annotations

import pytest

from bookchat.cli import main


@pytest.mark.parametrize("command", ["serve", "healthcheck"])
@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_bad_port_is_named_in_words(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--port", value])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    # argparse's fallback names the converter ("invalid _port value"), which means nothing here.
    assert "_port" not in error
    assert value in error
    assert "is not a TCP port (1 to 65535)" in error
