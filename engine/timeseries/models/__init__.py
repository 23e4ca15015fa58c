"""Time-series models: a diffusion model (the default) and TimeGAN."""
