"""The text models: a causal language model (``causal_lm.py``) and the discriminator that filters its samples."""
