"""Image data: reading folders / ``.npz`` / Parquet into uint8 arrays, and writing PNG data sets."""
from engine.images.io import ImageSet, decode_image, encode_png, image_table, read_images, save_dataset

__all__ = ["ImageSet", "decode_image", "encode_png", "image_table", "read_images", "save_dataset"]
