#!@interpreter@
"""`bookchat` in the Nix build and the image: the kernel starts it from the shebang, no shell.

nix/bookchat.nix fills in the placeholders (interpreter, site directories, argument prefix).
"""

import site
import sys

APP = "@app@"
DEPENDENCIES = "@dependencies@"
PREFIX: list[str] = []

# The application first, then its dependencies; addsitedir also runs their .pth files, the way
# nixpkgs' own script wrappers set up sys.path (those wrappers are shell scripts).
for directory in (APP, DEPENDENCIES):
    site.addsitedir(directory)

from bookchat.cli import main  # noqa: E402

main([*PREFIX, *sys.argv[1:]])
