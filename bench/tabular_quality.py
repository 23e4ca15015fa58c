"""Quality of every tabular model on several real tables, each trained to the same time budget.

Tables (all public, read locally):

- ``adult``: UCI Adult, 32,561 x 15 (``../shared/data/tabular/adult.csv``), target ``income``;
- ``gapminder``: Gapminder life expectancy / GDP per country and 5-year step, 1,704 x 6 (as shipped
  in ``plotly.data``; the ISO code columns, which repeat ``country``, are dropped): a
  high-cardinality column (``country``, 142 values) and a rare class (``continent`` =
  Oceania, 1.4%), the target;
- ``breast_cancer``: Wisconsin diagnostic breast cancer, 569 x 31 (as shipped in scikit-learn):
  more than 30 columns, target ``target``.

Each table is split 80/20 into train and holdout. Models: ours (tabddpm, ctgan, tvae with
``time_budget``; gaussian_copula) and, when ``SDV_PATH`` names a folder holding SDV
(``pip install --target /tmp/sdv_site sdv``), SDV's CTGAN and GaussianCopula. For each:
SDMetrics' QualityReport (column shapes, pair trends, score), logistic detection ROC AUC
(3-fold logistic regression telling real from synthetic rows; 0.5 = indistinguishable),
TSTR/TRTR (``engine``'s ML efficacy ratio on the holdout, from as many synthetic rows as real
training rows; 1.0 = as good as real data),
the DCR share (synthetic rows closer to a training row than to a holdout row; 0.5 = no
copying), fit seconds and sampling rows/s, plus the QualityReport ratio to our CTGAN.

    python bench/tabular_quality.py --quick          # 30 s per model, Adult subsampled
    python bench/tabular_quality.py --budget 15m     # the issue's setting
    python bench/tabular_quality.py --tables breast_cancer --train-rows 200 --models default,tabddpm,gaussian_copula --budget 2m
                                                     # where TabularSynthesizer()'s default rule comes from
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"adult": "income", "gapminder": "continent", "breast_cancer": "target"}


def load_table(name: str) -> pd.DataFrame:
    if name == "adult":
        return pd.read_csv(ROOT.parent / "shared" / "data" / "tabular" / "adult.csv")
    if name == "gapminder":
        import plotly.data

        return plotly.data.gapminder().drop(columns=["iso_alpha", "iso_num"])
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        frame = load_breast_cancer(as_frame=True).frame
        frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
        return frame
    raise SystemExit(f"unknown table {name!r}; known: {', '.join(TARGETS)}")


def sdmetrics_metadata(frame: pd.DataFrame, schema) -> dict:
    columns = {}
    for col in schema.columns:
        if col.name not in frame.columns:
            continue
        kind = col.kind.value
        sdtype = {"categorical": "categorical", "boolean": "boolean", "datetime": "datetime"}.get(kind, "numerical")
        if kind == "identifier":
            sdtype = "id"
        columns[col.name] = {"sdtype": sdtype}
    return {"columns": columns}


def quality_report(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: dict) -> dict:
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synthetic, metadata, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    return {"quality": float(report.get_score()), "shapes": float(props["Column Shapes"]), "pairs": float(props["Column Pair Trends"])}


def logistic_detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, schema, seed: int = 0, max_rows: int = 5000) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from engine.tabular.metrics.features import FeatureEncoder

    n = min(len(real), len(synthetic), max_rows)
    r, s = real.sample(n=n, random_state=seed), synthetic.sample(n=n, random_state=seed)
    features = FeatureEncoder(schema).fit(r)
    x = np.vstack([features.transform(r), features.transform(s)])
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    proba = cross_val_predict(LogisticRegression(max_iter=500), x, y, cv=folds, method="predict_proba")[:, 1]
    return float(max(roc_auc_score(y, proba), 0.5))


def fit_ours(model: str, train: pd.DataFrame, budget: float | None, seed: int):
    """``model="default"``: ``TabularSynthesizer()`` chooses (its choice is ``synth.model``)."""
    from engine import TabularSynthesizer

    synth = TabularSynthesizer(model=None if model == "default" else model)
    if model == "gaussian_copula":
        synth.fit(train, seed=seed)
    else:
        synth.fit(train, time_budget=budget, seed=seed, show_progress=False)
    return synth, (lambda n: synth.sample(n, seed=seed + 1))


def fit_sdv(model: str, train: pd.DataFrame, budget: float, seed: int, quick: bool):
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

    # SDV 2 takes and returns single tables as {name: frame} dictionaries; SDV 1 takes frames.
    sdv2 = not hasattr(Metadata, "detect_from_dataframe")
    if sdv2:
        metadata = Metadata.detect_from_dataframes({"table": train}, infer_keys="primary_only")
    else:
        metadata = Metadata.detect_from_dataframe(train)
    if model == "sdv_ctgan":
        # SDV has no time budget: its default 300 epochs (30 with --quick).
        synth = CTGANSynthesizer(metadata, epochs=30 if quick else 300, verbose=False)
    else:
        synth = GaussianCopulaSynthesizer(metadata)
    synth.fit({"table": train} if sdv2 else train)

    def sample(n: int) -> pd.DataFrame:
        rows = synth.sample(num_rows=n)
        return rows["table"] if sdv2 else rows

    return synth, sample


def evaluate(name: str, model: str, train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema, rate: float, fit_s: float) -> dict:
    from engine.tabular.metrics.privacy import privacy_metrics
    from engine.tabular.metrics.utility import ml_efficacy

    target = TARGETS[name]
    metadata = sdmetrics_metadata(train, schema)
    row = {"table": name, "model": model, "fit_s": round(fit_s, 1), "rows_per_s": round(rate)}
    row.update(quality_report(train, synthetic[train.columns], metadata))
    row["detection_auc"] = logistic_detection_auc(train, synthetic, schema)
    eff = ml_efficacy(train, synthetic, holdout, target, schema)
    row["tstr_over_trtr"] = eff["score"]
    row["dcr_share"] = privacy_metrics(train, synthetic, holdout, schema, sample_rows=2000)["closer_to_train_share"]
    return row


def main(argv: list[str] | None = None) -> int:
    from engine.training.config import parse_duration

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="15m",
                   help="training time budget per torch model (default 15m); 'none': their default epochs")
    p.add_argument("--train-rows", type=int, help="keep only this many training rows of each table (small-table runs)")
    p.add_argument("--quick", action="store_true", help="30 s budgets, Adult subsampled to 8,000 training rows, SDV CTGAN 30 epochs")
    p.add_argument("--tables", default=",".join(TARGETS))
    p.add_argument("--models", default="tabddpm,ctgan,tvae,gaussian_copula,sdv_ctgan,sdv_gaussian_copula",
                   help="comma-separated; 'default' is TabularSynthesizer() choosing for itself")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--save", help="save each of our trained models in this folder (as TABLE-MODEL), to score them again later")
    args = p.parse_args(argv)
    budget = None if args.budget == "none" else parse_duration("30s" if args.quick and args.budget == "15m" else args.budget)
    models = args.models.split(",")
    if os.environ.get("SDV_PATH"):
        sys.path.append(os.environ["SDV_PATH"])  # after our own packages: SDV must not shadow torch or numpy
    else:
        models = [m for m in models if not m.startswith("sdv_")]
        print("SDV_PATH not set: SDV's models are skipped", flush=True)

    import ray

    from engine.tabular.schema.infer import infer_schema
    from engine.tabular.synthesizer import default_model

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, logging_level="ERROR")
    try:
        import platform

        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    print(f"CPU: {cpu}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; budget {'none' if budget is None else f'{budget:g} s'} per torch model", flush=True)
    rows = []
    for name in args.tables.split(","):
        table = load_table(name)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(table))
        cut = int(0.8 * len(table))
        train, holdout = table.iloc[order[:cut]].reset_index(drop=True), table.iloc[order[cut:]].reset_index(drop=True)
        if args.quick and len(train) > 8000:
            train = train.iloc[:8000]
        if args.train_rows:
            train = train.iloc[: args.train_rows]
        schema = infer_schema(train)
        # As many synthetic rows as real training rows: TSTR and TRTR then learn from equally many rows.
        n = len(train)
        for model in models:
            t0 = time.perf_counter()
            label = model
            try:
                if model.startswith("sdv_"):
                    _, sample = fit_sdv(model, train, budget, args.seed, args.quick)
                else:
                    synth, sample = fit_ours(model, train, budget, args.seed)
                fit_s = time.perf_counter() - t0
                if args.save and not model.startswith("sdv_"):
                    synth.save(Path(args.save) / f"{name}-{model}")
                if model == "default":
                    label = f"default ({synth.model})"
                t1 = time.perf_counter()
                synthetic = sample(n)
                rate = n / (time.perf_counter() - t1)
                row = evaluate(name, label, train, holdout, synthetic, schema, rate, fit_s)
            except Exception as exc:  # a bench reports a failing model and goes on with the others
                row = {"table": name, "model": label, "error": f"{type(exc).__name__}: {exc}"[:300]}
            rows.append(row)
            print(json.dumps(row), flush=True)
        base = next((r for r in rows if r["table"] == name and r["model"] == "ctgan" and "quality" in r), None)
        print(f"\n== {name}: {len(train)} training rows, {table.shape[1]} columns, target {TARGETS[name]!r}; "
              f"TabularSynthesizer() would choose {default_model(len(train), train.shape[1], budget)} here")
        print(f"{'model':22s} {'quality':>7s} {'shapes':>7s} {'pairs':>7s} {'vs ctgan':>8s} {'detect':>7s} {'TSTR/TRTR':>9s} {'DCR':>5s} {'fit s':>7s} {'rows/s':>8s}")
        for r in rows:
            if r["table"] != name:
                continue
            if "error" in r:
                print(f"{r['model']:22s} error: {r['error']}")
                continue
            ratio = r["quality"] / base["quality"] if base else float("nan")
            print(
                f"{r['model']:22s} {r['quality']:7.3f} {r['shapes']:7.3f} {r['pairs']:7.3f} {ratio:8.3f} {r['detection_auc']:7.3f} "
                f"{r['tstr_over_trtr']:9.3f} {r['dcr_share']:5.2f} {r['fit_s']:7.1f} {r['rows_per_s']:8d}"
            )
        print(flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
