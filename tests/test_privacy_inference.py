"""Attribute-inference risk in the privacy audit, and DP models refused outside DPSynthesizer. No Ray."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.privacy.audit import attribute_inference, verify_privacy
from engine.tabular.schema.infer import infer_schema

sys.path.insert(0, str(Path(__file__).parent))
from test_privacy import _table  # noqa: E402


def test_attribute_inference_copy_is_risky_independent_sample_is_not():
    train, holdout, fresh = _table(1000, seed=1), _table(1000, seed=2), _table(1000, seed=3)
    schema = infer_schema(train)
    copy = attribute_inference(train, holdout, train.copy(), schema, n_attacks=1000)
    # 'size' is unique per row: the nearest copy on (color, size) is the target itself, so its flag is known.
    assert copy["flag"]["train_success"] == 1.0 and copy["flag"]["holdout_success"] < 0.8
    assert copy["flag"]["risk"] > 0.9 and copy["flag"]["risk_ci"][0] > 0.5
    fresh_risk = attribute_inference(train, holdout, fresh, schema, n_attacks=1000)
    for secret, a in fresh_risk.items():  # the synthetic rows know nothing of the training rows: same success on both sides
        assert abs(a["risk"]) < 0.2, (secret, a)
    # The flag is independent of the other columns: the attack is no better than a random synthetic row's flag.
    assert fresh_risk["flag"]["holdout_success"] == pytest.approx(fresh_risk["flag"]["baseline_success"], abs=0.1)


def test_the_audit_reports_it_and_a_copy_fails_on_it():
    train, holdout = _table(300, seed=1), _table(300, seed=2)
    report = verify_privacy(train, train.copy(), holdout=holdout, shadow=None, attribute_attacks=200)
    assert set(report.attribute_inference) == {"color", "size", "flag"}
    assert report.attribute_inference_risk > 0.9
    assert "Attribute inference of &#x27;flag&#x27;" in report.to_html() and '"attribute_inference_risk"' in report.to_json()
    report.exact_copy_rate = 0.0  # even without the copy count, the inference risk alone fails it
    report.dcr_share, report.attacks = None, {}
    assert not report.passed
    only = verify_privacy(train, train.copy(), holdout=holdout, shadow=None, attribute_attacks=50, attribute_secrets=["flag"])
    assert set(only.attribute_inference) == {"flag"}
    with pytest.raises(Exception, match="not modelled columns"):
        verify_privacy(train, train.copy(), holdout=holdout, shadow=None, attribute_secrets=["salary"])


@pytest.mark.parametrize("model", ["dp_ctgan", "dp_tvae"])
def test_dp_models_are_refused_without_the_accountant(model):
    from engine.core.errors import InvalidOptionError
    from engine.tabular.synthesizer import TabularSynthesizer

    synth = TabularSynthesizer(model, model_config={"embedding_dim": 8})
    with pytest.raises(InvalidOptionError, match=rf"DPSynthesizer\(model='{model}'.*no privacy accounting"):
        synth.fit(_table(40), epochs=1, show_progress=False)
    assert not hasattr(synth, "schema_") or synth.schema_ is None  # refused before reading or training anything


def test_singling_out_copy_is_risky_independent_sample_is_not():
    from engine.privacy.audit import singling_out

    train, holdout, fresh = _table(1000, seed=1), _table(1000, seed=2), _table(1000, seed=3)
    schema = infer_schema(train)
    copy = singling_out(train, holdout, train.copy(), schema, n_attacks=500)
    # A predicate that picks out one copied row picks out that very training row; on holdout rows only by chance.
    # Three columns single out rarely: about a hundred predicates of 10,000 tries pick out one row.
    assert copy["queries"] >= 50 and copy["train_success"] == 1.0
    assert copy["risk"] > 0.8 and copy["risk_ci"][0] > 0.5
    fresh_risk = singling_out(train, holdout, fresh, schema, n_attacks=500)
    # Chance singles out as often on either side (the standard error is about 0.07 here).
    assert abs(fresh_risk["risk"]) < 0.25 and fresh_risk["risk_ci"][0] < 0.2, fresh_risk


def test_the_audit_reports_singling_out():
    train, holdout = _table(300, seed=1), _table(300, seed=2)
    report = verify_privacy(train, train.copy(), holdout=holdout, shadow=None, attribute_attacks=0, singling_out_attacks=200)
    assert report.singling_out["risk"] > 0.5 and "Singling out" in report.to_html() and '"singling_out"' in report.to_json()
    report.exact_copy_rate, report.dcr_share, report.attacks = 0.0, None, {}
    report.singling_out["risk_ci"] = [0.6, 0.9]  # the criterion reads the lower bound
    assert not report.passed
    skipped = verify_privacy(train, _table(300, seed=3), holdout=holdout, shadow=None, attribute_attacks=0, singling_out_attacks=0)
    assert skipped.singling_out == {}
