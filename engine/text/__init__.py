"""Text: causal language models trained on a corpus, label-conditional through control tokens (see ``synthesizer.py``)."""
