"""Tests of the chat service building blocks: prompt, answerers, conversation store."""
