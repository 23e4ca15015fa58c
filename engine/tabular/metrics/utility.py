"""Utility: is the synthetic table useful in place of the real one?

- ML efficacy: train on synthetic, test on a real holdout (TSTR) against train
  on real, test on the same holdout (TRTR), with a linear model and gradient
  boosted trees; classification reports F1 and ROC AUC, regression R2.
- Detection: how well a classifier tells real rows from synthetic ones (ROC
  AUC by cross-validation; 0.5 means it cannot).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from engine.tabular.metrics.features import FeatureEncoder
from engine.tabular.schema.kinds import TableSchema

MAX_TRAIN_ROWS = 20_000


def _cap(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed) if len(frame) > n else frame


def class_scores(proba: np.ndarray, classes: np.ndarray, label: object) -> np.ndarray:
    """The predicted probability of ``label``; zeros when the model never saw it in training (it cannot rank it)."""
    known = list(classes)
    return proba[:, known.index(label)] if label in known else np.zeros(len(proba))


def ovr_macro_auc(y_test: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """One-vs-rest ROC AUC averaged over the classes of the test set (sklearn's ``multi_class="ovr"``, macro).

    Computed class by class rather than by ``roc_auc_score(multi_class="ovr")``
    because the model may lack classes of the test set (a synthetic training set
    without a rare class): such a class scores 0.5, the AUC of a constant score.
    Classes the test set lacks have no AUC and are left out.
    """
    present = pd.unique(y_test)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([roc_auc_score(y_test == c, class_scores(proba, classes, c)) for c in present]))


def ml_efficacy(
    real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, target: str, schema: TableSchema, *, seed: int = 0
) -> dict[str, Any]:
    """TSTR vs TRTR scores per model family; the ratio synthetic/real is the headline."""
    kind = schema[target].kind
    classification = not kind.is_numeric
    real, synthetic = _cap(real, MAX_TRAIN_ROWS, seed), _cap(synthetic, MAX_TRAIN_ROWS, seed)
    features = FeatureEncoder(schema, exclude=(target,)).fit(real)
    x_test = features.transform(holdout)
    rows = []
    if classification:
        labels = real[target].astype(object).value_counts().index
        positive = labels[-1] if len(labels) == 2 else None  # the minority class of a binary target
        y_test = holdout[target].astype(object).to_numpy()
        models = {
            "logistic_regression": lambda: LogisticRegression(max_iter=1000),
            "gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=seed),
        }
        for model_name, make in models.items():
            scores = {}
            for source, frame in (("real", real), ("synthetic", synthetic)):
                y = frame[target].astype(object).to_numpy()
                if len(set(y)) < 2:
                    scores[source] = {"f1": 0.0, "roc_auc": 0.5}
                    continue
                clf = make().fit(features.transform(frame), y)
                pred = clf.predict(x_test)
                proba = clf.predict_proba(x_test)
                if positive is not None:
                    f1 = f1_score(y_test, pred, pos_label=positive, zero_division=0)
                    auc = roc_auc_score(y_test == positive, class_scores(proba, clf.classes_, positive))
                else:
                    f1 = f1_score(y_test, pred, average="macro", zero_division=0)
                    auc = ovr_macro_auc(y_test, proba, clf.classes_)
                scores[source] = {"f1": float(f1), "roc_auc": float(auc)}
            rows.append({"model": model_name, **{f"{m}_{s}": v for s, d in scores.items() for m, v in d.items()}})
        metric = "f1"
    else:
        y_test = pd.to_numeric(holdout[target]).to_numpy(dtype=float)
        models = {
            "linear_regression": lambda: LinearRegression(),
            "gradient_boosting": lambda: HistGradientBoostingRegressor(random_state=seed),
        }
        for model_name, make in models.items():
            row: dict[str, Any] = {"model": model_name}
            for source, frame in (("real", real), ("synthetic", synthetic)):
                y = pd.to_numeric(frame[target]).to_numpy(dtype=float)
                ok = ~np.isnan(y)
                reg = make().fit(features.transform(frame)[ok], y[ok])
                row[f"r2_{source}"] = float(r2_score(y_test, reg.predict(x_test)))
            rows.append(row)
        metric = "r2"
    real_scores = [r[f"{metric}_real"] for r in rows]
    syn_scores = [r[f"{metric}_synthetic"] for r in rows]
    ratio = float(np.mean(syn_scores) / np.mean(real_scores)) if np.mean(real_scores) > 0 else float("nan")
    return {"target": target, "task": "classification" if classification else "regression", "metric": metric,
            "models": rows, "score": ratio}


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, *, max_rows: int = 5_000, seed: int = 0) -> float:
    """Cross-validated ROC AUC of gradient boosted trees separating real from synthetic rows."""
    n = min(len(real), len(synthetic), max_rows)
    r, s = real.sample(n=n, random_state=seed), synthetic.sample(n=n, random_state=seed)
    features = FeatureEncoder(schema).fit(r)
    x = np.vstack([features.transform(r), features.transform(s)])
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    proba = cross_val_predict(HistGradientBoostingClassifier(max_iter=100, random_state=seed), x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))
