"""Embedders and answerers: Gemini (real SDK) and offline (local) backends behind one interface."""
