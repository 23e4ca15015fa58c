"""Table models, one family per file: CTGAN, TVAE, Gaussian copula."""
