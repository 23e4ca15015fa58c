"""The audio evaluation report: scores with their floors, as JSON and as a self-contained HTML page.

The HTML page shows, for a few real and a few generated clips, the waveform
(inline SVG), the log-mel spectrogram (an embedded PNG) and a player (an
``<audio>`` tag with the WAV inlined), beside the table of scores.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.evaluation.report import json_ready

# score -> (what it measures, better when) for the HTML table and summary.
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "mel_frechet": ("Fréchet distance of log-mel band statistics (floor: real vs real)", "lower"),
    "centroid_wasserstein": ("spectral centroid distributions, Wasserstein distance in Hz", "lower"),
    "bandwidth_wasserstein": ("spectral bandwidth distributions, Wasserstein distance in Hz", "lower"),
    "silence_wasserstein": ("silence ratio distributions, Wasserstein distance", "lower"),
    "diversity_ratio": ("mean pairwise distance of generated clips / of real clips", "near 1"),
    "nearest_real_ratio": ("median distance to the nearest training clip, generated / held-out real", "near 1; far below: copies"),
    "copy_share": ("generated clips nearer a training clip than 99% of real pairs", "near 0.01"),
    "judge_accuracy_real": ("the judge's accuracy on held-out real clips", "context"),
    "conditional_accuracy": ("generated clips the judge assigns to the class they were generated for", "higher"),
    "inception_score": ("Inception-style score of the generated clips, by the judge (real: inception_score_real)", "higher"),
    "judge_frechet": ("Fréchet distance in the judge's feature space (floor: real vs real)", "lower"),
    "precision": ("share of generated clips inside the real manifold (judge features)", "higher"),
    "recall": ("share of real clips inside the generated manifold (judge features)", "higher"),
}


@dataclass
class AudioReport:
    """Scores (``scores``: name -> number; ``<name>_floor`` beside distances), notes (``details``) and example clips."""

    scores: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 0
    examples: dict[str, tuple[np.ndarray, list[str] | None]] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.scores[key]

    def summary(self) -> str:
        lines = []
        for key, (text, better) in DESCRIPTIONS.items():
            if key in self.scores:
                floor = self.scores.get(f"{key}_floor")
                lines.append(f"{key:>24}: {self.scores[key]:.4g}" + (f" (floor {floor:.4g})" if floor is not None else "") + f"  [{better}]")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return json_ready({"modality": "audio", "scores": self.scores, "details": self.details})

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save(self, out_dir: str | Path) -> Path:
        """``report.json`` and ``report.html`` in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.to_json(out / "report.json")
        (out / "report.html").write_text(self.to_html())
        return out

    def to_html(self) -> str:
        """A self-contained HTML page: scores, then waveforms, spectrograms and players of real and generated clips."""
        rows = []
        for key, (text, better) in DESCRIPTIONS.items():
            if key in self.scores:
                floor = self.scores.get(f"{key}_floor")
                rows.append(f"<tr><td>{key}</td><td>{_fmt(self.scores[key])}</td><td>{_fmt(floor) if floor is not None else ''}</td>"
                            f"<td>{html.escape(text)}</td><td>{html.escape(better)}</td></tr>")
        notes = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in self.details.items())
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>Audio evaluation</title><style>"
            "body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
            ".clips{display:flex;flex-wrap:wrap;gap:16px}.clip{border:1px solid #ccc;padding:8px}</style></head><body>",
            "<h1>Audio evaluation</h1>",
            f"<p>{self.scores.get('num_real')} real, {self.scores.get('num_synthetic')} synthetic clips at {self.sample_rate} Hz; "
            f"{self.scores.get('num_compared')} of each compared.</p>",
            "<table><tr><th>score</th><th>value</th><th>floor</th><th>what</th><th>better</th></tr>", *rows, "</table>",
            f"<h2>Notes</h2><ul>{notes}</ul>",
        ]
        for name, (clips, labels) in self.examples.items():
            parts.append(f"<h2>{html.escape(name)} clips</h2><div class='clips'>")
            for i, clip in enumerate(clips):
                label = f" — {html.escape(str(labels[i]))}" if labels else ""
                parts.append(f"<div class='clip'><div>#{i}{label}</div>{_waveform_svg(clip)}{_spectrogram_img(clip, self.sample_rate)}"
                             f"<br>{_player(clip, self.sample_rate)}</div>")
            parts.append("</div>")
        parts.append("</body></html>")
        return "".join(parts)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else html.escape(str(v))


def _waveform_svg(clip: np.ndarray, width: int = 320, height: int = 80) -> str:
    """The waveform's envelope as an inline SVG (min and max per pixel column)."""
    x = np.asarray(clip, dtype=np.float32)
    cols = np.array_split(x, width) if len(x) >= width else [x[i : i + 1] for i in range(len(x))]
    top = " ".join(f"{i},{height / 2 * (1 - float(c.max())):.1f}" for i, c in enumerate(cols) if len(c))
    bottom = " ".join(f"{i},{height / 2 * (1 - float(c.min())):.1f}" for i, c in reversed(list(enumerate(cols))) if len(c))
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}'><polygon points='{top} {bottom}' "
            "fill='#369' stroke='none'/></svg>")


def _spectrogram_img(clip: np.ndarray, sample_rate: int) -> str:
    """The clip's log-mel spectrogram as an embedded greyscale PNG (low frequencies at the bottom)."""
    from PIL import Image

    from engine.audio.metrics.spectral import log_mel

    spec = log_mel(np.asarray(clip)[None], sample_rate)[0].T[::-1]  # (mels, frames)
    lo, hi = np.percentile(spec, 5), spec.max()
    img = np.clip((spec - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).resize((320, 120), Image.NEAREST).save(buf, format="PNG")
    return f"<br><img alt='log-mel spectrogram' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _player(clip: np.ndarray, sample_rate: int) -> str:
    from engine.audio.io import wav_bytes

    data = base64.b64encode(wav_bytes(clip, sample_rate)).decode()
    return f"<audio controls src='data:audio/wav;base64,{data}'></audio>"
