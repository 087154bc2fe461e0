"""Persistence: conversations (SQLAlchemy async) and passages (Qdrant)."""
