"""Generators, one module per model family, and the registry by name."""
