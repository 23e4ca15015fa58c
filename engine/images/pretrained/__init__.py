"""Pretrained text-to-image diffusion pipelines (a local folder or a hub id)."""
