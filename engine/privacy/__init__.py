"""Differential privacy, PII replacement and privacy audits (see ``engine.privacy.synthesizer.DPSynthesizer``)."""
