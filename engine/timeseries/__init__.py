"""Time series: panels of sequences (entities in time), wide arrays and windows of one long series."""
