"""`python -m bookchat` is the same as the `bookchat` command."""

from bookchat.cli import main

if __name__ == "__main__":
    main()
