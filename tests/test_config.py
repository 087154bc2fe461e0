"""Settings: where the data lives by default, and configuration errors in one plain line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookchat.config import Settings, load_settings
from bookchat.paths import default_data_dir


def test_the_default_data_dir_is_per_user_not_per_working_directory() -> None:
    assert default_data_dir({"HOME": "/home/ada"}) == Path("/home/ada/.local/share/bookchat")
    assert default_data_dir({"HOME": "/home/ada", "XDG_DATA_HOME": "/srv/data"}) == Path(
        "/srv/data/bookchat"
    )
    # The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
    assert default_data_dir({"HOME": "/home/ada", "XDG_DATA_HOME": "data"}) == Path(
        "/home/ada/.local/share/bookchat"
    )


def test_settings_use_the_same_data_dir_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOOKCHAT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    seen = set()
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        seen.add(Settings().data_dir)
    assert seen == {tmp_path / "xdg" / "bookchat"}


def test_bookchat_data_dir_overrides_and_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", "here")
    assert Settings().data_dir == tmp_path / "here"
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", "~/books")
    assert Settings().data_dir == tmp_path / "home" / "books"
    # Empty means unset, not the current directory.
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_dir == tmp_path / "xdg" / "bookchat"


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "DATABASE_URL",
            "not a url",
            "bookchat: configuration: DATABASE_URL must look like "
            "postgresql://user:password@host/db",
        ),
        (
            "QDRANT_URL",
            "ftp://qdrant",
            "bookchat: configuration: QDRANT_URL is invalid: must be an http:// or https:// URL, "
            "such as https://host:6333",
        ),
    ],
)
def test_a_configuration_error_is_one_plain_line(
    name: str,
    value: str,
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        load_settings()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == line + "\n"
    assert "Value error" not in err
    assert value not in err


def test_variables_a_command_does_not_use_cannot_stop_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("QDRANT_COLLECTION", "my-book")
    settings = load_settings(unused=("DATABASE_URL", "PORT"))
    assert (settings.database_url, settings.port) == (None, 8000)
    assert settings.qdrant_collection == "my-book"
