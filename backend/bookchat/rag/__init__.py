"""Retrieval, prompts and answers: no FastAPI imports, testable on their own."""
