"""The report's charts: the data behind them, and inline SVG (no network, no plotting library)."""
from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from engine.tabular.metrics import numeric_values
from engine.tabular.schema.kinds import ColumnKind, TableSchema

PLOT_BINS = 20
PLOT_CATEGORIES = 20

REAL, SYN = "#4C72B0", "#DD8452"


def distribution_chart(name: str, plot: dict[str, Any], width: int = 320, height: int = 150) -> str:
    """Side-by-side bars of real and synthetic shares per bin or category."""
    labels, real, syn = plot["labels"], plot["real"], plot["synthetic"]
    n = max(len(labels), 1)
    top = max(max(real, default=0), max(syn, default=0)) or 1.0
    bw = (width - 20) / n
    bars = []
    for i in range(len(labels)):
        for j, (vals, colour) in enumerate(((real, REAL), (syn, SYN))):
            h = (height - 40) * vals[i] / top
            x = 10 + i * bw + j * bw / 2
            bars.append(f"<rect x='{x:.1f}' y='{height - 25 - h:.1f}' width='{max(bw / 2 - 1, 0.5):.1f}' height='{h:.1f}' fill='{colour}'><title>{html.escape(str(labels[i]))}: {vals[i]:.3f}</title></rect>")
    return (
        f"<figure><svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>"
        f"<text x='10' y='14' font-size='12'>{html.escape(name)}</text>"
        f"<text x='{width - 120}' y='14' font-size='10' fill='{REAL}'>real</text><text x='{width - 80}' y='14' font-size='10' fill='{SYN}'>synthetic</text>"
        + "".join(bars)
        + "</svg></figure>"
    )


def correlation_heatmap(title: str, columns: list[str], matrix: list[list[float]], signed: bool = False, cell: int = 28) -> str:
    k = len(columns)
    size = 100 + k * cell
    rects = []
    for i in range(k):
        for j in range(k):
            v = matrix[i][j]
            v = 0.0 if v is None or np.isnan(v) else float(v)
            if signed:
                a = min(abs(v), 1.0)
                colour = f"rgba(200,0,0,{a:.2f})"
            else:
                colour = f"rgba(76,114,176,{min(abs(v), 1.0):.2f})"
            rects.append(f"<rect x='{100 + j * cell}' y='{20 + i * cell}' width='{cell - 1}' height='{cell - 1}' fill='{colour}'><title>{html.escape(columns[i])} x {html.escape(columns[j])}: {v:.2f}</title></rect>")
        rects.append(f"<text x='2' y='{20 + i * cell + cell * 0.6:.0f}' font-size='9'>{html.escape(columns[i][:16])}</text>")
    return f"<figure><svg width='{size}' height='{size - 60 if size > 160 else size}' xmlns='http://www.w3.org/2000/svg'><text x='100' y='12' font-size='12'>{html.escape(title)}</text>{''.join(rects)}</svg></figure>"


def histogram_pair(title: str, series: dict[str, list[float]], width: int = 480, height: int = 180, bins: int = 30) -> str:
    values = [np.asarray(v, dtype=float) for v in series.values() if len(v)]
    if not values:
        return ""
    hi = max(float(v.max()) for v in values) or 1.0
    edges = np.linspace(0, hi, bins + 1)
    colours = [REAL, SYN, "#55A868"]
    paths = []
    for (name, v), colour in zip(series.items(), colours):
        counts, _ = np.histogram(np.asarray(v, dtype=float), bins=edges)
        share = counts / max(counts.sum(), 1)
        top = max(share.max(), 1e-9)
        pts = " ".join(f"{10 + i * (width - 20) / bins:.1f},{height - 20 - (height - 50) * s / top:.1f}" for i, s in enumerate(share))
        paths.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='2'><title>{html.escape(name)}</title></polyline>")
    legend = "".join(f"<text x='{10 + 200 * i}' y='28' font-size='10' fill='{c}'>{html.escape(n)}</text>" for i, (n, c) in enumerate(zip(series, colours)))
    return f"<figure><svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'><text x='10' y='14' font-size='12'>{html.escape(title)}</text>{legend}{''.join(paths)}</svg></figure>"


def plot_data(real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema) -> dict[str, Any]:
    """Per-column distributions (shares per bin of the real range, or per category) and correlation matrices."""
    out: dict[str, Any] = {"columns": {}}
    numeric = []
    for col in schema.columns:
        if col.kind in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT):
            continue
        if col.kind.is_numeric:
            r, s = numeric_values(real[col.name]), numeric_values(synthetic[col.name])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            if not len(r):
                continue
            numeric.append(col.name)
            edges = np.histogram_bin_edges(r, bins=PLOT_BINS)
            # Synthetic values outside the real range are drawn in the outer bins rather than dropped.
            hr = np.histogram(r, edges)[0] / len(r)
            hs = np.histogram(np.clip(s, edges[0], edges[-1]), edges)[0] / max(len(s), 1)
            labels = [f"{e:.3g}" for e in edges[:-1]]
            if col.kind is ColumnKind.DATETIME:
                labels = [str(pd.Timestamp(int(e)).date()) for e in edges[:-1]]
            out["columns"][col.name] = {"labels": labels, "real": hr.tolist(), "synthetic": hs.tolist()}
        else:
            fr = real[col.name].astype(object).value_counts(normalize=True)
            fs = synthetic[col.name].astype(object).value_counts(normalize=True)
            cats = list(fr.index[:PLOT_CATEGORIES])
            out["columns"][col.name] = {
                "labels": [str(c) for c in cats],
                "real": fr.reindex(cats, fill_value=0).tolist(),
                "synthetic": fs.reindex(cats, fill_value=0).tolist(),
            }
    if len(numeric) >= 2:
        cr = pd.DataFrame({c: numeric_values(real[c]) for c in numeric}).corr().to_numpy()
        cs = pd.DataFrame({c: numeric_values(synthetic[c]) for c in numeric}).corr().to_numpy()
        out["correlation"] = {"columns": numeric, "real": cr.tolist(), "synthetic": cs.tolist(), "difference": (cs - cr).tolist()}
    return out
