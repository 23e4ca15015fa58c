"""The image evaluation report: distances per feature space, conditional accuracy, sample grids."""
from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.evaluation.report import json_ready
from engine.images.io import encode_png


@dataclass
class FeatureScores:
    """Distances of the synthetic images from the real ones in one feature space.

    The ``*_floor`` values compare the real images with held-out real images at
    the same sample size: what a perfect generator would score, since FID is
    biased upwards for finite samples. None without held-out images.
    """

    fid: float
    kid: float
    kid_std: float
    precision: float
    recall: float
    fid_floor: float | None = None
    kid_floor: float | None = None
    precision_floor: float | None = None
    recall_floor: float | None = None


@dataclass
class ImageReport:
    """Quality of a set of generated images against real ones.

    Attributes:
        inception: FID, KID, precision and recall on InceptionV3 features (the
            numbers papers quote); None when Inception was switched off.
        domain: the same on the features of a small CNN trained on the real images.
        conditional_accuracy: share of generated images that the classifier trained
            on real images assigns to the class they were generated for (None
            without labels on both sides).
        judge_accuracy: that classifier's accuracy on held-out real images: the
            ceiling for ``conditional_accuracy``.
        per_class_accuracy: ``conditional_accuracy`` per requested class.
        num_compared: images drawn from each set for the distances.
        memorization: copies of training images and a membership attack, in pixel space
            (see :func:`engine.evaluation.memorization.memorization_scores`).
        details: sizes, timings and notes.
    """

    inception: FeatureScores | None
    domain: FeatureScores | None
    conditional_accuracy: float | None = None
    judge_accuracy: float | None = None
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    num_compared: int = 0
    memorization: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    grids: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # "real"/"synthetic" -> uint8 image

    @property
    def fid(self) -> float | None:
        """Inception FID (None when Inception was switched off)."""
        return self.inception.fid if self.inception else None

    @property
    def kid(self) -> float | None:
        """Inception KID (None when Inception was switched off)."""
        return self.inception.kid if self.inception else None

    # ---------------------------------------------------------------- text
    def summary(self) -> str:
        """A few plain lines: each distance with its real-vs-real floor, and conditional accuracy."""
        lines = []
        for name, s in (("Inception", self.inception), ("Domain", self.domain)):
            if s is None:
                continue
            floor = f" (real vs held-out real: {s.fid_floor:.2f})" if s.fid_floor is not None else ""
            lines.append(
                f"{name:<10}FID {s.fid:.2f}{floor}; KID {s.kid:.4f}; precision {s.precision:.1%}, recall {s.recall:.1%}"
            )
        if self.conditional_accuracy is not None:
            judge = f" (the judge scores {self.judge_accuracy:.1%} on held-out real images)" if self.judge_accuracy is not None else ""
            lines.append(f"Classes   {self.conditional_accuracy:.1%} of generated images show the requested class{judge}")
        m = self.memorization
        if m:
            held = (f"; {m['dcr_share']:.1%} closer to a training than a held-out image, membership attack AUC "
                    f"{m['membership_auc']:.3f}") if "membership_auc" in m else ""
            lines.append(f"Copies    {m['exact_copy_rate']:.1%} exact, {m['near_copy_rate']:.1%} near copies of training images; "
                         f"nearest-real ratio {m['nearest_real_ratio']:.2f}{held}")
        lines.append(f"Compared  {self.num_compared} images per set")
        for note in self.details.get("notes", []):
            lines.append(f"Note      {note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "grids"}
        return json_ready(d)

    def to_json(self) -> str:
        """The report as JSON (grids left out; they are in the HTML and saved as PNG)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``report.json``, ``report.html`` and the grids as PNG into ``out_dir``; returns the folder."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(self.to_json())
        (out / "report.html").write_text(self.to_html())
        for name, grid in self.grids.items():
            (out / f"grid_{name}.png").write_bytes(encode_png(grid))
        return out

    # ---------------------------------------------------------------- html
    def to_html(self) -> str:
        """One self-contained page: overview, tables, and real and generated grids side by side."""
        esc = html.escape
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>Synthetic image report</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
            ".grids{display:flex;gap:2em;flex-wrap:wrap}img{image-rendering:pixelated}.muted{color:#666}"
            "</style></head><body><h1>Synthetic image report</h1>",
            f"<pre>{esc(self.summary())}</pre>",
            "<p class='muted'>FID and KID: 0 means the two sets have the same feature statistics; lower is better. "
            "A perfect generator does not reach 0 but the real-vs-real floor, since both numbers vary with the sample. "
            "Precision: share of generated images that look like some real image (realism). Recall: share of real "
            "images that some generated image resembles (diversity). Values depend on the feature network: "
            "Inception numbers compare with published ones, domain numbers only within this data set.</p>",
            "<h2>Distances</h2><table><tr><th>features</th><th>FID</th><th>FID floor</th><th>KID</th><th>KID floor</th>"
            "<th>precision</th><th>recall</th><th>precision floor</th><th>recall floor</th></tr>",
        ]
        for name, s in (("Inception V3", self.inception), ("domain CNN", self.domain)):
            if s is not None:
                cells = [s.fid, s.fid_floor, s.kid, s.kid_floor, s.precision, s.recall, s.precision_floor, s.recall_floor]
                parts.append(f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{_fmt(v)}</td>" for v in cells) + "</tr>")
        parts.append("</table>")
        if self.per_class_accuracy:
            parts.append("<h2>Conditional accuracy per class</h2><table><tr><th>class</th><th>accuracy</th></tr>")
            parts += [f"<tr><td>{esc(k)}</td><td>{v:.1%}</td></tr>" for k, v in self.per_class_accuracy.items()]
            parts.append("</table>")
        if self.grids:
            parts.append("<h2>Samples</h2><p class='muted'>One row per class where there are labels.</p><div class='grids'>")
            for name, grid in self.grids.items():
                data = base64.b64encode(encode_png(grid)).decode("ascii")
                scale = 2 if grid.shape[1] < 400 else 1
                parts.append(
                    f"<figure><figcaption>{esc(name)}</figcaption><img alt='{esc(name)} samples' width='{grid.shape[1] * scale}' "
                    f"src='data:image/png;base64,{data}'></figure>"
                )
            parts.append("</div>")
        parts.append("</body></html>")
        return "".join(parts)


def sample_grid(images: np.ndarray, labels: np.ndarray | None, *, per_row: int = 8, max_rows: int = 10,
                order: Sequence[Any] | None = None) -> np.ndarray:
    """A uint8 grid image: one row per class (the first ``max_rows`` classes), or rows in order without labels.

    ``order`` lists the classes top to bottom (e.g. by label index, so that
    class "10" comes after "2"); by default the sorted distinct labels.
    """
    h, w, c = images.shape[1:]
    if labels is None:
        rows = [images[i * per_row : (i + 1) * per_row] for i in range(min(max_rows, math.ceil(len(images) / per_row)))]
    else:
        classes = np.unique(labels) if order is None else [k for k in order if (labels == k).any()]
        rows = [images[labels == k][:per_row] for k in classes[:max_rows]]
    grid = np.full((len(rows) * (h + 2), per_row * (w + 2), c), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for j, img in enumerate(row):
            grid[r * (h + 2) + 1 : r * (h + 2) + 1 + h, j * (w + 2) + 1 : j * (w + 2) + 1 + w] = img
    return grid


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.4f}" if abs(v) < 0.1 else f"{v:.3f}"
