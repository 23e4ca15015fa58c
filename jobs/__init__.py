"""Entrypoints for ``ray job submit`` (``python -m jobs.<name> --config FILE``)."""
