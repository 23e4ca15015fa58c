"""Row generation: in-process (``rows``) and sharded over Ray Data into Parquet (``sharded``)."""
from engine.sampling.rows import SamplingRequest, generate_rows, seed_streams

__all__ = ["SamplingRequest", "generate_rows", "seed_streams"]
