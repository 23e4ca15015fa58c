"""Differentially private torch models of tables (registered as table models ``dp_ctgan`` and ``dp_tvae``)."""
