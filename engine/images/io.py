"""Image data sets in and out: folders, ``.npz`` arrays, Parquet with PNG bytes.

Inside the engine an image set is a uint8 array ``(N, H, W, C)`` (channels
last, ``C`` = 1 for grey, 3 for colour) with optional integer labels and the
class names they index. Everything read is brought to that form; everything
written is lossless PNG.

Parquet files are written with an ``image`` column of ``{bytes, path}``
structs and a ``label`` column, plus the schema metadata Hugging Face
``datasets`` reads, so the same files load with ``ray.data.read_parquet`` and
with ``datasets.load_dataset("parquet", ...)`` as images and class labels.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.core.errors import InvalidDataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IMAGE_COLUMN = "image"
LABEL_COLUMN = "label"
NPZ_IMAGE_KEYS = ("x", "images", "x_train", "X", "arr_0")
NPZ_LABEL_KEYS = ("y", "labels", "y_train", "Y", "arr_1")


@dataclass
class ImageSet:
    """Images ``(N, H, W, C)`` uint8, labels ``(N,)`` int64 or None, and the label names."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    # Other per-image columns of a samples table (augment()'s "source": "real" or "synthetic").
    extra: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0


# ----------------------------------------------------------------- PNG codec
def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of one ``(H, W)`` or ``(H, W, C)`` uint8 image (C in 1, 3, 4)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise InvalidDataError(f"PNG encoding expects uint8 pixels; got dtype {arr.dtype}.")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidDataError(f"PNG encoding expects an (H, W) or (H, W, 1|3|4) image; got shape {arr.shape}.")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode_image(data: bytes, *, where: str = "image") -> np.ndarray:
    """Pixels of PNG/JPEG/... bytes as ``(H, W, C)`` uint8 (grey gets C = 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return _pil_to_array(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidDataError(f"Cannot decode {where} as an image: {exc}") from None


def _pil_to_array(im) -> np.ndarray:
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB" if im.mode not in ("1", "I", "I;16", "F") else "L")
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


# -------------------------------------------------------------- conversions
def to_nhwc(images: Any, *, where: str = "images") -> np.ndarray:
    """A uint8 ``(N, H, W, C)`` array from ``(N, H, W)`` / ``(N, H, W, C)`` (or channels-first ``(N, C, H, W)``).

    RGBA (4 channels) becomes RGB by dropping the alpha channel, as PIL's
    ``convert("RGB")`` does for RGBA files.
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise InvalidDataError(f"{where} must be an array of shape (N, H, W) or (N, H, W, C); got shape {arr.shape}.")
    if arr.shape[-1] not in (1, 3, 4) and arr.shape[1] in (1, 3, 4):
        arr = np.moveaxis(arr, 1, -1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.shape[-1] not in (1, 3):
        raise InvalidDataError(f"{where} must have 1 (grey), 3 (colour) or 4 (RGBA) channels; got shape {arr.shape}.")
    if len(arr) == 0:
        raise InvalidDataError(f"{where} is empty: it holds no image.")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and np.nanmin(arr) >= 0.0 and np.nanmax(arr) <= 1.0:
            arr = np.rint(arr * 255.0)  # floats in [0, 1], as many loaders give
        elif np.nanmin(arr) < 0 or np.nanmax(arr) > 255:
            raise InvalidDataError(
                f"{where} must hold pixel values in 0..255 (or floats in [0, 1]); got values in "
                f"[{np.nanmin(arr)}, {np.nanmax(arr)}]."
            )
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def resize_images(images: np.ndarray, size: int | tuple[int, int], channels: int | None = None) -> np.ndarray:
    """Images resized to ``size`` (square when an int) and converted to ``channels``; a no-op when they match."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    channels = channels or images.shape[-1]
    out = images
    if out.shape[-1] != channels:
        if channels == 1:  # ITU-R 601 luma, as PIL's "L" conversion
            grey = out[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            out = np.rint(grey).clip(0, 255).astype(np.uint8)[..., None]
        else:
            out = np.repeat(out, 3, axis=-1)
    if out.shape[1:3] == (h, w):
        return np.ascontiguousarray(out)
    resized = np.empty((len(out), h, w, channels), dtype=np.uint8)
    for i, img in enumerate(out):  # PIL's antialiased resampling; per image, as it only takes one at a time
        pil = Image.fromarray(img[:, :, 0] if channels == 1 else img)
        resized[i] = np.asarray(pil.resize((w, h), Image.Resampling.BICUBIC)).reshape(h, w, channels)
    return resized


# --------------------------------------------------------------------- read
def read_images(
    source: Any,
    labels: Any = None,
    *,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    image_column: str = IMAGE_COLUMN,
    label_column: str | None = LABEL_COLUMN,
) -> ImageSet:
    """Read an image set from an array, a folder, an ``.npz`` file or Parquet.

    Args:
        source: a uint8 array ``(N, H, W)`` / ``(N, H, W, C)``; a folder of
            images (one sub-folder per class gives labels, named by the folder);
            an ``.npz`` with an image array (``x``, ``images``, ``x_train``) and
            optionally labels (``y``, ``labels``, ``y_train``); or a Parquet
            file/folder with image bytes in ``image_column`` and labels in
            ``label_column``; or a Hugging Face ``datasets.Dataset`` or a Ray
            Dataset with those columns; or an :class:`ImageSet`. A dataset is
            materialised in memory (all of its images decoded at once, as
            for the other sources), so it must fit in this process's memory;
            take a subset first (``ds.select(...)``, ``ds.limit(n)``) for one
            that does not.
        labels: labels for an array source (ints or strings), one per image.
        image_size: resize every image to this size; needed when a folder
            holds images of different sizes.
        channels: 1 to convert to grey, 3 to colour; default keeps the source's.
    """
    dataset_table = _dataset_table(source, image_column)
    if isinstance(source, ImageSet):
        result = ImageSet(to_nhwc(source.images), source.labels, source.class_names)
    elif dataset_table is not None:
        result = _read_table(dataset_table, type(source).__name__, image_column, label_column)
        if labels is not None:
            result.labels, result.class_names = _encode_labels(labels, len(result), "labels")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InvalidDataError(f"The image source {str(path)!r} does not exist.")
        if path.is_dir() and not any(path.rglob("*.parquet")):
            result = _read_folder(path, image_size, channels)
        elif path.suffix == ".npz":
            result = _read_npz(path)
        elif path.is_dir() or path.suffix == ".parquet":
            result = _read_parquet(path, image_column, label_column)
        else:
            raise InvalidDataError(
                f"Cannot read images from {str(path)!r}: expected a folder of images, an .npz file or Parquet."
            )
        if labels is not None:
            result.labels, result.class_names = _encode_labels(labels, len(result), "labels")
    else:
        result = ImageSet(to_nhwc(source))
        if labels is not None:
            result.labels, result.class_names = _encode_labels(labels, len(result), "labels")
    if image_size is not None or channels is not None:
        size = image_size if image_size is not None else result.images.shape[1:3]
        result.images = resize_images(result.images, size, channels)
    return result


def _encode_labels(labels: Any, n: int, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes ``0..K-1`` and the names they stand for (ints keep their numeric order)."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n:
        raise InvalidDataError(f"{where} must be one label per image ({n}); got shape {arr.shape}.")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise InvalidDataError(f"{where} holds missing values; every image needs a label.")
    if arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        values = arr.astype(np.int64)
        uniq = np.unique(values)
        if uniq.min() >= 0 and uniq.max() < max(len(uniq), 1) * 4 and uniq.max() < 100_000:
            # Small non-negative ints (digits, class ids) keep their values as codes: label 7 stays 7.
            names = [str(i) for i in range(int(uniq.max()) + 1)]
            return values, names
        codes = np.searchsorted(uniq, values)
        return codes.astype(np.int64), [str(v) for v in uniq]
    uniq, codes = np.unique(arr.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(v) for v in uniq]


def _read_folder(path: Path, image_size, channels) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidDataError(f"The folder {str(path)!r} holds no image file ({', '.join(IMAGE_SUFFIXES)}).")
    classes = sorted({p.relative_to(path).parts[0] for p in files if len(p.relative_to(path).parts) > 1})
    if classes and any(len(p.relative_to(path).parts) == 1 for p in files):
        raise InvalidDataError(
            f"The folder {str(path)!r} mixes images at its top level with class sub-folders; "
            "put every image in a class folder, or none."
        )
    arrays = []
    for p in files:
        try:
            with Image.open(p) as im:
                arrays.append(_pil_to_array(im))
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidDataError(f"Cannot read the image file {str(p)!r}: {exc}") from None
    want_c = channels or max(a.shape[2] for a in arrays)
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1 and image_size is None:
        raise InvalidDataError(
            f"The images in {str(path)!r} have {len(shapes)} different sizes (e.g. {sorted(shapes)[:3]}); "
            "give image_size to resize them to one size."
        )
    size = image_size if image_size is not None else arrays[0].shape[:2]
    images = np.concatenate([resize_images(a[None], size, want_c) for a in arrays])
    if not classes:
        return ImageSet(images)
    labels = np.array([classes.index(p.relative_to(path).parts[0]) for p in files], dtype=np.int64)
    return ImageSet(images, labels, list(classes))


def _read_npz(path: Path) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            image_key = next((k for k in NPZ_IMAGE_KEYS if k in keys), None)
            if image_key is None:
                raise InvalidDataError(
                    f"The file {str(path)!r} has no image array; expected one of the keys "
                    f"{', '.join(NPZ_IMAGE_KEYS)} (it has {', '.join(keys) or 'none'})."
                )
            images = to_nhwc(z[image_key], where=f"{path.name}[{image_key!r}]")
            label_key = next((k for k in NPZ_LABEL_KEYS if k in keys), None)
            if label_key is None:
                return ImageSet(images)
            codes, names = _encode_labels(z[label_key], len(images), f"{path.name}[{label_key!r}]")
            return ImageSet(images, codes, names)
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidDataError):
            raise
        raise InvalidDataError(f"Cannot read {str(path)!r} as an .npz archive: {exc}") from None


def _dataset_table(source: Any, image_column: str) -> pa.Table | None:
    """The Arrow table of a Hugging Face or Ray Dataset (None for any other source).

    Checked through ``sys.modules``: a source can only be such a dataset if its
    library is already imported, so neither is imported here for nothing.
    """
    hf = sys.modules.get("datasets")
    if hf is not None and isinstance(source, (hf.DatasetDict, hf.IterableDataset, hf.IterableDatasetDict)):
        raise InvalidDataError(
            f"real_images is a Hugging Face {type(source).__name__}; give one split as a datasets.Dataset "
            "(e.g. ds['train'], and for a streaming dataset Dataset.from_list(list(ds.take(n))))."
        )
    if hf is not None and isinstance(source, hf.Dataset):
        if image_column not in source.column_names:
            # Hub data sets name their columns freely ("img" in CIFAR-10): one Image feature is unambiguous.
            found = [name for name, f in source.features.items() if isinstance(f, hf.Image)]
            if len(found) != 1:
                raise InvalidDataError(
                    f"The Hugging Face dataset has no image column {image_column!r} and {len(found)} columns of "
                    f"the Image feature; its columns are {', '.join(source.column_names)}. Pass image_column=..."
                )
            source = source.rename_column(found[0], image_column)
        # The Arrow format gives the stored {bytes, path} image structs without decoding them to PIL,
        # and applies any select/shuffle indices; the features carry the ClassLabel names.
        table = source.with_format("arrow")[:]
        meta = {"huggingface": json.dumps({"info": {"features": source.features.to_dict()}})}
        return table.replace_schema_metadata(meta)
    ray_data = sys.modules.get("ray.data")
    if ray_data is not None and isinstance(source, ray_data.Dataset):
        import ray

        tables = [t for t in ray.get(source.to_arrow_refs()) if t.num_rows]
        if not tables:
            raise InvalidDataError("The Ray Dataset given as images holds no row.")
        return pa.concat_tables(tables, promote_options="default")
    return None


def _read_parquet(path: Path, image_column: str, label_column: str | None) -> ImageSet:
    # A folder's Parquet files in name order (the sharded sampler's part-000000.parquet, ...),
    # ignoring what else is there (its manifest.json).
    files = sorted(str(f) for f in path.rglob("*.parquet")) if path.is_dir() else [str(path)]
    try:
        table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    except (pa.ArrowException, OSError) as exc:
        raise InvalidDataError(f"Cannot read {str(path)!r} as Parquet: {exc}") from None
    return _read_table(table, f"The Parquet data {str(path)!r}", image_column, label_column)


def _image_column_arrays(col: pa.ChunkedArray, image_column: str) -> list[np.ndarray]:
    """The images of an Arrow column: encoded bytes (plain or Hugging Face ``{bytes, path}``) or pixel tensors."""
    if pa.types.is_struct(col.type):  # Hugging Face's {bytes, path} image struct
        structs = col.to_pylist()
        blobs = []
        for i, item in enumerate(structs):
            if item and item.get("bytes") is None and item.get("path"):
                # Datasets built from local files may keep only the path.
                try:
                    blobs.append(Path(item["path"]).read_bytes())
                except OSError as exc:
                    raise InvalidDataError(f"Cannot read the image file {item['path']!r} of row {i}: {exc}") from None
            else:
                blobs.append(None if item is None else item.get("bytes"))
    elif pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        blobs = col.to_pylist()
    else:
        # Pixel arrays: Ray's tensor columns, or nested lists (a Hugging Face Array3D feature).
        try:
            if isinstance(col.type, pa.ExtensionType):
                pixels = np.concatenate([chunk.to_numpy() for chunk in col.chunks])
            else:
                pixels = np.asarray(col.to_pylist())
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise InvalidDataError(
                f"The column {image_column!r} holds neither image bytes nor equally shaped pixel arrays "
                f"(its type is {col.type}): {exc}"
            ) from None
        return list(to_nhwc(pixels, where=f"column {image_column!r}"))
    for i, b in enumerate(blobs):
        if b is None:
            raise InvalidDataError(f"Row {i} of column {image_column!r} holds no image.")
    return [decode_image(b, where=f"row {i} of column {image_column!r}") for i, b in enumerate(blobs)]


def _read_table(table: pa.Table, where: str, image_column: str, label_column: str | None) -> ImageSet:
    """Images and labels of an Arrow table of the layout ``image_table`` writes (or Hugging Face's)."""
    if image_column not in table.column_names:
        raise InvalidDataError(
            f"{where} has no image column {image_column!r}; its columns are {', '.join(table.column_names)}."
        )
    if table.num_rows == 0:
        raise InvalidDataError(f"{where} holds no row.")
    arrays = _image_column_arrays(table.column(image_column), image_column)
    if len({a.shape for a in arrays}) > 1:
        c = max(a.shape[2] for a in arrays)
        arrays = [resize_images(a[None], arrays[0].shape[:2], c)[0] for a in arrays]
    images = np.stack(arrays)
    if label_column is None or label_column not in table.column_names:
        return ImageSet(images)
    names = _class_names_from_metadata(table.schema, label_column)
    raw = table.column(label_column).to_numpy(zero_copy_only=False)
    if names is not None and raw.dtype.kind in "iu":
        return ImageSet(images, raw.astype(np.int64), names)
    codes, found = _encode_labels(raw, len(images), f"column {label_column!r}")
    return ImageSet(images, codes, found)


def _class_names_from_metadata(schema: pa.Schema, label_column: str) -> list[str] | None:
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta:
        return None
    try:
        feature = json.loads(meta)["info"]["features"][label_column]
        return list(feature["names"]) if feature.get("_type") == "ClassLabel" else None
    except (KeyError, TypeError, ValueError):
        return None


# -------------------------------------------------------------------- write
def image_set_from_table(table: pa.Table) -> ImageSet:
    """The images and labels of an Arrow table written by :func:`image_table` (PNG bytes decoded)."""
    return _read_table(table, "the samples table", IMAGE_COLUMN, LABEL_COLUMN)


def image_table(images: np.ndarray, labels: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                *, extra: dict[str, Sequence[Any]] | None = None) -> pa.Table:
    """An Arrow table of PNG images (``{bytes, path}`` structs) and labels, with Hugging Face metadata."""
    arr = to_nhwc(images)
    blobs = [encode_png(img) for img in arr]
    image_col = pa.StructArray.from_arrays(
        [pa.array(blobs, type=pa.binary()), pa.array([None] * len(blobs), type=pa.string())], names=["bytes", "path"]
    )
    columns: dict[str, pa.Array] = {IMAGE_COLUMN: image_col}
    features: dict[str, Any] = {IMAGE_COLUMN: {"_type": "Image"}}
    if labels is not None:
        columns[LABEL_COLUMN] = pa.array(np.asarray(labels, dtype=np.int64))
        features[LABEL_COLUMN] = (
            {"names": list(class_names), "_type": "ClassLabel"} if class_names else {"dtype": "int64", "_type": "Value"}
        )
    for name, values in (extra or {}).items():
        columns[name] = pa.array(list(values))
        features[name] = {"dtype": "string" if columns[name].type == pa.string() else str(columns[name].type), "_type": "Value"}
    table = pa.table(columns)
    return table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})


def save_dataset(
    images: Any,
    output_dir: str | os.PathLike[str],
    labels: Any = None,
    *,
    class_names: Sequence[str] | None = None,
    format: str = "parquet",
    overwrite: bool = False,
) -> Path:
    """Write images (and labels) to ``output_dir`` as Parquet (``part-00000.parquet``) or an image folder.

    The folder layout has one sub-folder per class (``<class>/000001.png``) when
    there are labels, as torchvision's ``ImageFolder`` and ``read_images`` expect.
    The data is written to a temporary folder next to ``output_dir`` and moved in
    place when complete, so an interrupted call leaves nothing half-written.
    """
    if isinstance(images, ImageSet):
        labels = images.labels if labels is None else labels
        class_names = class_names or images.class_names
        images = images.images
    arr = to_nhwc(images)
    codes = None
    if labels is not None:
        if class_names is None:
            codes, class_names = _encode_labels(labels, len(arr), "labels")
        else:
            codes = np.asarray(labels, dtype=np.int64)
            if codes.shape != (len(arr),) or codes.min() < 0 or codes.max() >= len(class_names):
                raise InvalidDataError(f"labels must be {len(arr)} class indices in 0..{len(class_names) - 1}.")
    if format not in ("parquet", "folder"):
        raise InvalidDataError(f"format must be 'parquet' or 'folder'; got {format!r}.")
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidDataError(f"The output folder {str(out)!r} is not empty; pass overwrite=True to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        if format == "parquet":
            pq.write_table(image_table(arr, codes, class_names), tmp / "part-00000.parquet")
        else:
            width = max(6, len(str(len(arr))))
            for i, img in enumerate(arr):
                folder = tmp / str(class_names[codes[i]]) if codes is not None else tmp
                folder.mkdir(exist_ok=True)
                (folder / f"{i:0{width}d}.png").write_bytes(encode_png(img))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
