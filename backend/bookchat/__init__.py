"""bookchat: retrieval-augmented chat for a Docusaurus book."""

__version__ = "0.1.0"
