"""Audio: recordings in (WAV/FLAC folders, manifests, arrays), WaveGAN, WAV out, audio metrics."""
