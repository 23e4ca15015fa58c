"""Image models, one family per file: DCGAN, WGAN-GP, DDPM."""
