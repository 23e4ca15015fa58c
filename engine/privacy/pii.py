"""Personal identifiers: detect them, keep them out of training, fill the output with fake ones.

Detection is by rules (no model to download): a column is PII when its **name** says so
(name, email, phone, ssn / national id, address, ...) or when most of a sample of its
**values** match a pattern (e-mail addresses, phone numbers, US SSNs, street addresses,
personal names: two or three capitalised words, nearly all distinct). PII columns are
dropped before training and filled afterwards with ``faker`` values in the data's locale;
numbers-and-letters formats (phones, SSNs, ids) keep the shape of the real values (each
digit and letter replaced at random). Every output value of every column is then checked
against the real PII values: a collision is regenerated, and the counts are kept in
``last_pii_report`` (a real value left in the output raises :class:`PIIError`).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.privacy.errors import PIIError, UtilityError

NAME_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"e[-_ ]?mail", re.I)),
    ("phone", re.compile(r"phone|mobile|\btel\b|telephone|fax", re.I)),
    ("ssn", re.compile(r"\bssn\b|social[-_ ]?security|national[-_ ]?id|passport|tax[-_ ]?id|\bnin\b", re.I)),
    ("address", re.compile(r"address|street|addr\b", re.I)),
    ("name", re.compile(r"(^|_|\b)(full[-_ ]?)?name$|first[-_ ]?name|last[-_ ]?name|surname|given[-_ ]?name", re.I)),
]
VALUE_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")),
    ("ssn", re.compile(r"^\d{3}-\d{2}-\d{4}$")),
    ("phone", re.compile(r"^\+?[\d\s().-]{7,20}$")),
    ("address", re.compile(r"^\d+\s+\w+(\s+\w+)*\s+(St|Street|Ave|Avenue|Rd|Road|Blvd|Lane|Ln|Dr|Drive|Way|Ct|Court|Pl|Place)\b", re.I)),
    ("name", re.compile(r"^[A-Z][a-z'-]+(\s[A-Z][a-z'-]+){1,2}$")),
]
MATCH_SHARE = 0.8  # a column is PII when this share of its sampled values match a pattern


def detect_pii(frame: pd.DataFrame, *, sample: int = 200, seed: int = 0) -> dict[str, str]:
    """``{column: pii_type}`` of the columns that look like personal identifiers."""
    out: dict[str, str] = {}
    for col in frame.columns:
        for kind, rule in NAME_RULES:
            if rule.search(str(col)):
                out[col] = kind
                break
        if col in out or frame[col].dtype != object:
            continue
        values = frame[col].dropna().astype(str)
        if not len(values):
            continue
        values = values.sample(min(sample, len(values)), random_state=seed)
        for kind, rule in VALUE_RULES:
            if values.str.match(rule).mean() >= MATCH_SHARE:
                if kind == "name" and values.nunique() < 0.5 * len(values):
                    continue  # repeated capitalised labels are categories ("New York"), not people
                out[col] = kind
                break
    return out


def _shape_like(template: str, rng: np.random.Generator) -> str:
    """A value of ``template``'s shape: each digit and letter replaced at random, other characters kept."""
    out = []
    for ch in template:
        if ch.isdigit():
            out.append(str(rng.integers(0, 10)))
        elif ch.isalpha():
            letter = chr(ord("a") + int(rng.integers(0, 26)))
            out.append(letter.upper() if ch.isupper() else letter)
        else:
            out.append(ch)
    return "".join(out)


def fake_values(kind: str, real: pd.Series, n: int, *, locale: str, seed: int) -> list[Any]:
    """``n`` fake values for a PII column of ``kind``, in ``locale`` (shapes of ``real`` kept for ids)."""
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    templates = real.dropna().astype(str).to_numpy()
    if kind == "email":
        return [fake.unique.email() for _ in range(n)]
    if kind == "name":
        name = str(real.name).lower()
        gen = fake.first_name if "first" in name or "given" in name else fake.last_name if "last" in name or "surname" in name else fake.name
        return [gen() for _ in range(n)]
    if kind == "address":
        return [fake.street_address() for _ in range(n)]
    if len(templates):  # phones, national ids and anything else: the real values' shapes, new characters
        picks = templates[rng.integers(0, len(templates), size=n)]
        return [_shape_like(t, rng) for t in picks]
    return [fake.bothify("??-########") for _ in range(n)]


def replace_pii(
    synthetic: pd.DataFrame, real: pd.DataFrame, pii: dict[str, str], *, locale: str = "en_US", seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``synthetic`` with every PII column filled with fake values; and the check's counts.

    No real PII value may appear anywhere in the output: collisions are regenerated (up to
    10 rounds), then a remaining one raises :class:`PIIError`.
    """
    out = synthetic.copy()
    real_values = {str(v) for c in pii for v in real[c].dropna().tolist()}
    report: dict[str, Any] = {"columns": dict(pii), "collisions_regenerated": 0, "real_values_in_output": 0}
    for i, (col, kind) in enumerate(pii.items()):
        values = fake_values(kind, real[col], len(out), locale=locale, seed=seed * 1000 + i)
        for round_ in range(10):
            clash = [j for j, v in enumerate(values) if str(v) in real_values]
            if not clash:
                break
            report["collisions_regenerated"] += len(clash)
            again = fake_values(kind, real[col], len(clash), locale=locale, seed=seed * 1000 + i + 7919 * (round_ + 1))
            for j, v in zip(clash, again):
                values[j] = v
        out[col] = pd.Series(values, index=out.index, dtype=object)
    leaked = int(sum(out[c].astype(str).isin(real_values).sum() for c in out.columns))
    report["real_values_in_output"] = leaked
    if leaked:
        raise PIIError(f"{leaked} real PII value(s) would appear in the output even after regeneration; nothing was returned.")
    return out, report


def generate_anonymous(
    dp: Any,
    real_data_with_pii: Any,
    *,
    pii_columns: Sequence[str] | None = None,
    num_samples: int | None = None,
    utility_threshold: float | None = None,
    target: str | None = None,
    locale: str = "en_US",
    epochs: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Train ``dp`` (a DPSynthesizer) without the PII columns and return rows with fake PII.

    ``pii_columns``: the PII columns (each must exist); None: detected (:func:`detect_pii`).
    ``utility_threshold``: the ML efficacy (:func:`ml_efficacy`: TSTR over TRTR ROC AUC of a
    logistic regression on ``target``, default the last non-PII column, tested on 20% of the rows
    held out from training) must reach it, else
    :class:`UtilityError` with the figure. The check's counts are on ``dp.last_pii_report``.
    """
    from engine.tabular.schema.io import read_table

    real = read_table(real_data_with_pii)
    if pii_columns is not None:
        missing = [c for c in pii_columns if c not in real.columns]
        if missing:
            raise PIIError(f"pii_columns names {missing}, which the table does not have. Columns: {list(real.columns)}.")
        detected = detect_pii(real[list(pii_columns)])
        pii = {c: detected.get(c, "identifier") for c in pii_columns}
    else:
        pii = detect_pii(real)
    rest = real.drop(columns=list(pii))
    if rest.shape[1] == 0:
        raise PIIError("Every column is PII: there is nothing left to learn.")
    n = len(real) if num_samples is None else int(num_samples)
    holdout = None
    train = rest
    if utility_threshold is not None:
        order = np.random.default_rng(seed).permutation(len(rest))
        cut = max(1, len(rest) // 5)
        holdout, train = rest.iloc[order[:cut]], rest.iloc[order[cut:]]
    dp.fit(train, epochs=epochs, seed=seed)
    synthetic = dp.sample(n, seed=seed)
    if utility_threshold is not None:
        target = target or rest.columns[-1]
        if target not in rest.columns:
            raise PIIError(f"The utility target {target!r} is not a non-PII column of the table.")
        result = ml_efficacy(train, synthetic, holdout, target)
        dp.last_utility_ = result
        if not result["score"] >= utility_threshold:
            raise UtilityError(
                f"The anonymised data's ML efficacy on {target!r} is {result['score']:.3f} (TSTR/TRTR ROC AUC: "
                f"{result['auc_synthetic']:.3f} / {result['auc_real']:.3f}), below utility_threshold={utility_threshold}. "
                "Raise epsilon, train longer, or lower the threshold."
            )
    out, report = replace_pii(synthetic, real, pii, locale=locale, seed=seed)
    dp.last_pii_report = report
    return out[list(real.columns)]


def ml_efficacy(train: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame, target: str) -> dict[str, float]:
    """Train-on-synthetic / train-on-real ROC AUC of a logistic regression predicting ``target`` on ``test``.

    Binary targets score the positive (last) class; multiclass targets one-vs-rest macro AUC.
    A synthetic table with a single class scores 0.5.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from engine.tabular.metrics.features import FeatureEncoder
    from engine.tabular.schema.infer import infer_schema

    features = FeatureEncoder(infer_schema(train), exclude=(target,)).fit(train)
    x_test = features.transform(test)
    y_test = test[target].astype(str).to_numpy()
    classes = np.unique(train[target].astype(str))

    def auc(frame: pd.DataFrame) -> float:
        y = frame[target].astype(str).to_numpy()
        if len(np.unique(y)) < 2:
            return 0.5
        clf = LogisticRegression(max_iter=500).fit(features.transform(frame), y)
        proba = clf.predict_proba(x_test)
        if len(classes) == 2:
            pos = classes[-1]
            col = list(clf.classes_).index(pos) if pos in clf.classes_ else None
            return float(roc_auc_score(y_test == pos, proba[:, col])) if col is not None and len(np.unique(y_test == pos)) == 2 else 0.5
        scores = [roc_auc_score(y_test == c, proba[:, list(clf.classes_).index(c)]) for c in clf.classes_ if 0 < (y_test == c).sum() < len(y_test)]
        return float(np.mean(scores)) if scores else 0.5

    real, syn = auc(train), auc(synthetic)
    return {"auc_real": real, "auc_synthetic": syn, "score": syn / real if real > 0 else float("nan")}
