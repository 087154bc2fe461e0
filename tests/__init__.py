"""bookchat tests."""
