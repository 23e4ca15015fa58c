"""Image data in and out: folders, .npz, Parquet (also as Hugging Face reads it), and the reversible preprocessor."""
from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import InvalidDataError
from engine.images import ImageSet, read_images, save_dataset
from engine.images.transforms import ImagePreprocessor
from tests.conftest import SHARED_DATA

MNIST = SHARED_DATA / "images" / "mnist.npz"


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    if not MNIST.exists():
        pytest.skip(f"MNIST is not at {MNIST} (see ../shared/data/README.md)")
    with np.load(MNIST) as z:
        return ImageSet(z["x_test"][:60, :, :, None], z["y_test"][:60].astype(np.int64), [str(i) for i in range(10)])


def test_npz_gives_images_labels_and_class_names():
    s = read_images(MNIST)
    assert s.images.shape == (60000, 28, 28, 1) and s.images.dtype == np.uint8
    assert s.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert s.class_names == [str(i) for i in range(10)]


@pytest.mark.parametrize("fmt", ["parquet", "folder"])
def test_saved_dataset_reads_back_pixel_exact(tmp_path, digits, fmt):
    save_dataset(digits, tmp_path / "out", format=fmt)
    back = read_images(tmp_path / "out")
    # The folder layout groups images by class: compare as multisets per class.
    for k in range(10):
        a = digits.images[digits.labels == k]
        if str(k) not in back.class_names:  # a folder layout has no folder for a class without images
            assert len(a) == 0
            continue
        b = back.images[back.labels == back.class_names.index(str(k))]
        assert len(a) == len(b)
        assert sorted(x.tobytes() for x in a) == sorted(x.tobytes() for x in b)
    if fmt == "parquet":
        assert np.array_equal(back.images, digits.images) and np.array_equal(back.labels, digits.labels)


def test_parquet_loads_as_images_and_class_labels_in_hugging_face_datasets(tmp_path, digits):
    datasets = pytest.importorskip("datasets")
    save_dataset(digits, tmp_path / "hf")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "hf" / "*.parquet"), split="train")
    assert ds.features["label"].names == digits.class_names
    assert np.array_equal(np.asarray(ds[3]["image"]), digits.images[3, :, :, 0])
    assert ds[3]["label"] == digits.labels[3]


def test_parquet_reads_in_ray_data_and_a_ray_dataset_is_an_image_source(ray_session, tmp_path, digits):
    from engine.images import decode_image

    save_dataset(digits, tmp_path / "ray")
    ds = ray_session.data.read_parquet(str(tmp_path / "ray"))
    assert ds.count() == len(digits)
    rows = ds.take_all()
    assert np.array_equal(np.stack([decode_image(r["image"]["bytes"]) for r in rows]), digits.images)
    assert [r["label"] for r in rows] == digits.labels.tolist()
    back = read_images(ds)
    assert np.array_equal(back.images, digits.images) and np.array_equal(back.labels, digits.labels)
    assert back.class_names == digits.class_names
    # Ray's own image reader gives pixel tensors rather than bytes.
    tensors = ray_session.data.from_numpy(digits.images)
    assert np.array_equal(read_images(tensors, image_column="data", label_column=None).images, digits.images)


def test_a_hugging_face_dataset_is_an_image_source(digits):
    datasets = pytest.importorskip("datasets")
    names = [f"class {i}" for i in range(12)]  # more than 10 classes: codes, not name order
    features = datasets.Features(img=datasets.Image(), label=datasets.ClassLabel(names=names))
    labels = (digits.labels + 2).tolist()
    ds = datasets.Dataset.from_dict({"img": list(digits.images[..., 0]), "label": labels}, features=features)
    s = read_images(ds)  # the one Image column is found whatever its name
    assert np.array_equal(s.images, digits.images) and s.labels.tolist() == labels and s.class_names == names
    subset = ds.shuffle(seed=0).select(range(5))  # an indices mapping over the same Arrow table
    assert read_images(subset).labels.tolist() == subset["label"]
    with pytest.raises(InvalidDataError, match="one split"):
        read_images(datasets.DatasetDict(train=ds))
    with pytest.raises(InvalidDataError, match="no image column 'image' and 0 columns"):
        read_images(datasets.Dataset.from_dict({"text": ["a"]}))


def test_rgba_arrays_become_rgb_as_rgba_files_do(tmp_path):
    from PIL import Image

    rgba = np.random.default_rng(0).integers(0, 256, (2, 6, 6, 4), dtype=np.uint8)
    for i, img in enumerate(rgba):
        Image.fromarray(img, "RGBA").save(tmp_path / f"{i}.png")
    from_array = read_images(rgba).images
    assert from_array.shape == (2, 6, 6, 3) and np.array_equal(from_array, read_images(tmp_path).images)
    assert np.array_equal(read_images(np.moveaxis(rgba, -1, 1)).images, from_array)  # channels first too


def test_save_refuses_a_non_empty_folder_and_leaves_it_intact(tmp_path, digits):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidDataError, match="not empty"):
        save_dataset(digits, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_colour_folder_of_mixed_sizes_needs_and_honours_image_size(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, size in (("cat", 40), ("dog", 24)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    with pytest.raises(InvalidDataError, match="image_size"):
        read_images(tmp_path)
    s = read_images(tmp_path, image_size=32)
    assert s.images.shape == (6, 32, 32, 3) and s.class_names == ["cat", "dog"]
    assert read_images(tmp_path, image_size=16, channels=1).images.shape == (6, 16, 16, 1)


def test_preprocessor_round_trip_is_exact_and_rows_carry_the_label(digits):
    pre = ImagePreprocessor()
    prepared = pre.prepare(digits.images, digits.labels)
    rows = pre.fit(prepared).transform(prepared)
    assert rows.shape == (60, 28 * 28 + 1) and rows.dtype == np.float32
    assert rows[:, :-1].min() >= -1 and rows[:, :-1].max() <= 1
    assert np.array_equal(rows[:, -1], digits.labels.astype(np.float32))
    assert np.array_equal(pre.pixels_to_uint8(rows), digits.images)


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((4, 28, 30), np.uint8), None, "square"),
        (np.zeros((4, 28, 28, 2), np.uint8), None, "channels"),
        (np.full((4, 8, 8), 300.0), None, "0..255"),
        (np.zeros((4, 8, 8), np.uint8), [0, 1], "one label per image"),
    ],
)
def test_bad_images_are_refused_with_what_was_expected(images, labels, match):
    with pytest.raises(InvalidDataError, match=match):
        ImagePreprocessor().prepare(images, labels)


def test_unknown_labels_name_the_classes(digits):
    pre = ImagePreprocessor()
    pre.fit(pre.prepare(digits.images, digits.labels))
    assert pre.label_codes(["7", 3]).tolist() == [7, 3]
    with pytest.raises(InvalidDataError, match="the classes are 0, 1"):
        pre.label_codes(["seven"])
    with pytest.raises(InvalidDataError, match="index 0..9"):
        pre.label_codes([12])
