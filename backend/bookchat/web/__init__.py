"""The chat page: HTML, script and stylesheet, served by bookchat.api.page."""
