"""The time-series evaluation report: scores as JSON and a self-contained HTML page with inline SVG pictures."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.evaluation.report import json_ready

REAL_COLOUR, SYNTHETIC_COLOUR = "#1f77b4", "#d62728"


@dataclass
class TimeSeriesReport:
    """Scores of synthetic sequences against real ones (see :mod:`engine.timeseries.metrics.scores`).

    ``scores`` holds the headline numbers (``discriminative_score``, ``predictive_score``,
    ``predictive_score_real`` when asked, ``autocorrelation_distance``,
    ``cross_correlation_distance``, ``ks_mean``, the DTW readings); ``ks`` the KS statistic
    per channel; ``failures`` a metric that could not be computed, with why.
    """

    scores: dict[str, Any]
    ks: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    pictures: dict[str, str] = field(default_factory=dict, repr=False)  # name -> SVG text

    def __getitem__(self, key: str) -> Any:
        return self.scores[key]

    def to_dict(self) -> dict[str, Any]:
        return json_ready({"scores": self.scores, "ks": self.ks, "failures": self.failures, "details": self.details})

    def summary(self) -> str:
        lines = [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in self.scores.items()]
        lines += [f"{k}: failed ({v})" for k, v in self.failures.items()]
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{v:.4f}</td></tr>" if isinstance(v, float)
            else f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in {**self.scores, **{f"KS {c}": s for c, s in self.ks.items()}}.items()
        )
        failed = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in self.failures.items())
        pictures = "".join(f"<h2>{html.escape(name)}</h2>{svg}" for name, svg in self.pictures.items())
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Time-series report</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 10px;border-bottom:1px solid #ddd}</style></head>"
            f"<body><h1>Time-series report</h1><p><span style='color:{REAL_COLOUR}'>real</span> vs "
            f"<span style='color:{SYNTHETIC_COLOUR}'>synthetic</span></p><table>{rows}</table>"
            f"{'<h2>Failed</h2><ul>' + failed + '</ul>' if failed else ''}{pictures}</body></html>"
        )

    def save(self, out_dir: str | Path) -> Path:
        """Write ``report.json`` and ``report.html`` to ``out_dir``; return the folder."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(self.to_dict(), indent=2))
        (out / "report.html").write_text(self.to_html())
        return out

    def save_html(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_html())
        return path


def _scale(values: np.ndarray, lo: float, hi: float, out_lo: float, out_hi: float) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return out_lo + (values - lo) / span * (out_hi - out_lo)


def scatter_svg(real: np.ndarray, synthetic: np.ndarray, size: int = 360) -> str:
    """Two point clouds ``(n, 2)`` in one square SVG (the PCA picture)."""
    both = np.concatenate([real, synthetic])
    pad = 10
    xs = lambda v: _scale(v, both[:, 0].min(), both[:, 0].max(), pad, size - pad)  # noqa: E731
    ys = lambda v: _scale(v, both[:, 1].min(), both[:, 1].max(), size - pad, pad)  # noqa: E731
    dots = []
    for pts, colour in ((real, REAL_COLOUR), (synthetic, SYNTHETIC_COLOUR)):
        px, py = xs(pts[:, 0]), ys(pts[:, 1])
        dots += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='{colour}' fill-opacity='0.5'/>" for x, y in zip(px, py)]
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' style='border:1px solid #ccc'>{''.join(dots)}</svg>"


def lines_svg(series: list[np.ndarray], colour: str, width: int = 240, height: int = 120, lo: float = -1, hi: float = 1) -> str:
    """Sequences of one channel as polylines in one small SVG."""
    paths = []
    for s in series:
        if len(s) < 2:
            continue
        x = _scale(np.arange(len(s)), 0, len(s) - 1, 4, width - 4)
        y = _scale(np.asarray(s, dtype=float), lo, hi, height - 4, 4)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y))
        paths.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='1.2' stroke-opacity='0.8'/>")
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' style='border:1px solid #ccc;margin:2px'>{''.join(paths)}</svg>"
