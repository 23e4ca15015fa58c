"""The core that knows no modality: the model contract, the registry, the front-door base, errors, seeds, runtime."""
