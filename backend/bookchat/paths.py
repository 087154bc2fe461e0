"""Where bookchat keeps its data by default. Standard library only: `--help` reads it too."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the index and conversations live unless BOOKCHAT_DATA_DIR says otherwise.

    Per user rather than per working directory, so `bookchat ingest` run in one folder and
    `bookchat serve` run in another use the same index: $XDG_DATA_HOME/bookchat, else
    ~/.local/share/bookchat (the XDG base directory default).
    """
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "bookchat"
    home = env.get("HOME", "").strip()
    if not home:
        try:
            home = str(Path.home())
        except RuntimeError:  # no HOME and no passwd entry (an anonymous container user)
            return Path(".bookchat").absolute()
    return Path(home) / ".local" / "share" / "bookchat"


def data_dir_now(environ: Mapping[str, str] | None = None) -> Path:
    """The data dir this environment selects (BOOKCHAT_DATA_DIR, else the default), unvalidated."""
    env = os.environ if environ is None else environ
    raw = env.get("BOOKCHAT_DATA_DIR", "").strip()
    return Path(raw).expanduser().absolute() if raw else default_data_dir(env)
