"""The tabular evaluation report: scores, details, a short summary, JSON and one self-contained HTML file."""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from engine.evaluation.report import json_ready
from engine.tabular.metrics.privacy import privacy_readings


@dataclass
class TabularReport:
    """Scores of a synthetic table against the real one.

    Attributes:
        similarity_score: the overall fidelity score, built as SDMetrics'
            QualityReport builds its score (mean of column shapes and column
            pair trends), in [0, 1].
        column_shapes_score, column_pair_trends_score: the two properties.
        correlation_score: mean Pearson correlation similarity over numeric pairs.
        ks_statistic: mean KS statistic over numeric columns (0 is best).
        ml_efficacy: TSTR/TRTR score ratio for the target (None without a target and holdout).
        detection_auc: ROC AUC of a real-vs-synthetic classifier (0.5 is ideal).
        privacy: the privacy diagnostics.
        details: per-column and per-pair metrics, and errors of metrics that failed.
    """

    similarity_score: float
    column_shapes_score: float
    column_pair_trends_score: float
    correlation_score: float
    ks_statistic: float
    ml_efficacy: float | None = None
    detection_auc: float | None = None
    privacy: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- text
    def summary(self) -> str:
        """A few plain lines: fidelity, utility, realism, privacy, and anything that could not be computed."""
        lines = [
            f"Fidelity  {self.similarity_score:.1%}  (column shapes {self.column_shapes_score:.1%}, "
            f"pair trends {self.column_pair_trends_score:.1%}; 100% = identical statistics)",
        ]
        if self.ml_efficacy is not None:
            ml = self.details.get("ml_efficacy", {})
            lines.append(
                f"Utility   {self.ml_efficacy:.1%} of real-data {ml.get('metric', 'score')} when a model for "
                f"{ml.get('target')!r} is trained on synthetic rows and tested on real holdout rows"
            )
        if self.detection_auc is not None:
            lines.append(f"Realism   a classifier tells synthetic from real rows with ROC AUC {self.detection_auc:.3f} (0.5 = cannot)")
        if self.privacy:
            p = self.privacy
            text = f"Privacy   {p['exact_copy_rate']:.2%} exact copies of training rows"
            if "membership_inference_auc" in p:
                text += (
                    f"; {p['closer_to_train_share']:.1%} of rows closer to training than to holdout rows (50% ideal);"
                    f" membership-inference AUC {p['membership_inference_auc']:.3f} (0.5 ideal)"
                )
            lines.append(text)
        for note in self.details.get("notes", []):
            lines.append(f"Note      {note}")
        failed = self.details.get("errors", [])
        if failed:
            lines.append(f"Note      {len(failed)} metric(s) could not be computed; see details.errors")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return json_ready(
            {
                "similarity_score": self.similarity_score,
                "column_shapes_score": self.column_shapes_score,
                "column_pair_trends_score": self.column_pair_trends_score,
                "correlation_score": self.correlation_score,
                "ks_statistic": self.ks_statistic,
                "ml_efficacy": self.ml_efficacy,
                "detection_auc": self.detection_auc,
                "privacy": {k: v for k, v in self.privacy.items() if k != "histograms"},
                "privacy_readings": privacy_readings(self.privacy) if self.privacy else [],
                "details": {k: v for k, v in self.details.items() if k != "plots"},
            }
        )

    def to_json(self) -> str:
        """The report as JSON (no NaN: undefined numbers are null; plot data left out)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``report.json`` and ``report.html`` into ``out_dir`` (created if needed); returns the folder."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(self.to_json())
        (out / "report.html").write_text(self.to_html())
        return out

    # ---------------------------------------------------------------- html
    def to_html(self) -> str:
        """One self-contained HTML page (inline CSS and SVG charts; opens without a network)."""
        from engine.tabular.metrics.plots import correlation_heatmap, distribution_chart, histogram_pair

        esc = html.escape
        d = self.details
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>Synthetic data report</title><style>",
            "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}"
            "h1{margin-bottom:.2em}.cards{display:flex;gap:1em;flex-wrap:wrap}"
            ".card{border:1px solid #ddd;border-radius:8px;padding:1em;min-width:200px}"
            ".big{font-size:2em;font-weight:600}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}"
            "th{background:#f4f4f4}.grid{display:flex;flex-wrap:wrap;gap:1em}.muted{color:#666}",
            "</style></head><body><h1>Synthetic data report</h1>",
            "<p class='muted'>Rows compared: " + esc(", ".join(f"{k} {v:,}" for k, v in d.get("rows", {}).items() if v)) + "</p>",
            "<div class='cards'>",
            self._card("Fidelity", f"{self.similarity_score:.1%}", "how closely column shapes and pair trends match (100% = identical)"),
        ]
        if self.ml_efficacy is not None:
            parts.append(self._card("Utility", f"{self.ml_efficacy:.1%}", "of the real data's ML score, trained on synthetic rows"))
        if self.detection_auc is not None:
            parts.append(self._card("Realism", f"{self.detection_auc:.3f}", "ROC AUC of a real-vs-synthetic classifier (0.5 ideal)"))
        if self.privacy:
            mia = self.privacy.get("membership_inference_auc")
            parts.append(
                self._card(
                    "Privacy",
                    f"{self.privacy['exact_copy_rate']:.2%} copies",
                    "exact copies of training rows" + (f"; membership attack AUC {mia:.3f} (0.5 ideal)" if mia is not None else ""),
                )
            )
        parts.append("</div><h2>Overview</h2><pre>" + esc(self.summary()) + "</pre>")

        parts.append("<h2>Column shapes</h2><table><tr><th>column</th><th>kind</th><th>metric</th><th>score</th><th>KS stat</th><th>Wasserstein (norm.)</th><th>missing-rate sim.</th><th>coverage</th></tr>")
        for name, c in d.get("columns", {}).items():
            parts.append(
                "<tr>" + "".join(
                    f"<td>{esc(_fmt(v))}</td>"
                    for v in (name, c.get("kind"), c.get("metric"), c.get("score"), c.get("ks_statistic"), c.get("wasserstein"), c.get("missing_rate_similarity"), c.get("coverage"))
                ) + "</tr>"
            )
        parts.append("</table><div class='grid'>")
        for name, plot in d.get("plots", {}).get("columns", {}).items():
            parts.append(distribution_chart(name, plot))
        parts.append("</div>")

        corr = d.get("plots", {}).get("correlation")
        if corr:
            parts.append("<h2>Correlations (Pearson, numeric columns)</h2><div class='grid'>")
            parts.append(correlation_heatmap("real", corr["columns"], corr["real"]))
            parts.append(correlation_heatmap("synthetic", corr["columns"], corr["synthetic"]))
            parts.append(correlation_heatmap("difference", corr["columns"], corr["difference"], signed=True))
            parts.append("</div>")
        pairs = d.get("pairs", {})
        if pairs:
            worst = sorted(pairs.items(), key=lambda kv: (kv[1].get("score") if kv[1].get("score") is not None else 1.0))[:15]
            parts.append("<h3>Pairs with the weakest trends</h3><table><tr><th>pair</th><th>metric</th><th>score</th><th>Cramér's V real</th><th>Cramér's V synthetic</th></tr>")
            for key, p in worst:
                parts.append(
                    "<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in (key, p.get("metric"), p.get("score"), p.get("cramers_v_real"), p.get("cramers_v_synthetic"))) + "</tr>"
                )
            parts.append("</table>")

        ml = d.get("ml_efficacy")
        if ml:
            parts.append(f"<h2>ML efficacy (target {esc(str(ml['target']))}, {esc(ml['task'])})</h2><table><tr>")
            keys = list(ml["models"][0].keys())
            parts.append("".join(f"<th>{esc(k)}</th>" for k in keys) + "</tr>")
            for row in ml["models"]:
                parts.append("<tr>" + "".join(f"<td>{esc(_fmt(row[k]))}</td>" for k in keys) + "</tr>")
            tested_on = ("holdout rows split from the real data, which the synthesizer may have seen" if d.get("holdout", {}).get("source") == "split from real_data"
                         else "real holdout rows the synthesizer never saw")
            parts.append(f"</table><p class='muted'>Trained on real (TRTR) or synthetic (TSTR) rows, tested on {tested_on}.</p>")

        if self.privacy:
            parts.append("<h2>Privacy</h2><ul>" + "".join(f"<li>{esc(t)}</li>" for t in privacy_readings(self.privacy)) + "</ul>")
            hist = self.privacy.get("histograms", {})
            if hist:
                parts.append(histogram_pair("Distance to closest training row", hist))
            parts.append(f"<p class='muted'>Sample sizes: {esc(str(self.privacy.get('sample_rows')))}</p>")
        dist = d.get("distributed")
        if dist:
            parts.append("<h2>How these numbers were computed</h2><p>Fidelity scores from every row with Ray Data; "
                         f"samples for the rest: {esc(str(dist['sample_rows']))}. Exact: {esc(dist['exact'])}.</p>")
            if dist["approximate"]:
                parts.append("<table><tr><th>column</th><th>KS statistic: max error</th><th>Wasserstein: max error</th></tr>")
                for name, b in dist["approximate"].items():
                    parts.append(f"<tr><td>{esc(name)}</td><td>{b['ks_statistic_max_error']:.4f}</td><td>{b['wasserstein_max_error']:.4f}</td></tr>")
                parts.append("</table>")
        errors = d.get("errors", [])
        if errors:
            parts.append("<h2>Metrics that could not be computed</h2><ul>" + "".join(f"<li>{esc(e)}</li>" for e in errors) + "</ul>")
        parts.append("</body></html>")
        return "".join(parts)

    @staticmethod
    def _card(title: str, value: str, note: str) -> str:
        return f"<div class='card'><div>{html.escape(title)}</div><div class='big'>{html.escape(value)}</div><div class='muted'>{html.escape(note)}</div></div>"


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}"
    return str(v)
