"""Audio models: WaveGAN (wavegan.py) and a small DiffWave (diffwave.py), one per file."""
