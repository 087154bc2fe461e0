"""`python -m bookchat` starts the server (like `bookchat serve`); with arguments it is the CLI."""

import sys

from bookchat.cli import main

if __name__ == "__main__":
    main(sys.argv[1:] or ["serve"])
