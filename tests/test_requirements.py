"""Conditions and constraints: parsing, validation errors, and that they hold on every row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import InvalidConditionError, InvalidConstraintError
from engine.core.conditions import parse_condition_arg
from engine.tabular.requirements import (
    Bounds,
    FixedCombinations,
    Inequality,
    Integer,
    apply_constraints,
    parse_conditions,
    parse_constraints,
)
from engine.tabular.requirements.conditions import coerce_text_value
from engine.tabular.schema.kinds import ColumnKind, ColumnSchema, TableSchema

SCHEMA = TableSchema(
    columns=(
        ColumnSchema("age", ColumnKind.INTEGER, "int64"),
        ColumnSchema("income", ColumnKind.CONTINUOUS, "float64"),
        ColumnSchema("sex", ColumnKind.CATEGORICAL, "object"),
        ColumnSchema("when", ColumnKind.DATETIME, "datetime64[ns]"),
        ColumnSchema("id", ColumnKind.IDENTIFIER, "int64"),
    )
)
CATS = {"sex": ["F", "M"]}
RANGES = {"age": (17.0, 90.0), "income": (0.0, 1e5), "when": (0.0, 2e9)}


def _code(column, value):
    labels = CATS[column]
    if value not in labels:
        raise InvalidConditionError(f"unknown {value!r} for {column!r}; valid: {labels}")
    return labels.index(value)


def parse(raw):
    return parse_conditions(raw, SCHEMA, category_code=_code, numeric_range=lambda c: RANGES[c])


def test_parse_category_and_ranges():
    c = parse({"sex": "F", "age": {"between": [30, 50]}, "income": {">=": 10.5, "<": 20}})
    assert [x.column for x in c.categories] == ["sex"]
    age, income = c.ranges
    assert (age.low, age.high) == (30, 50)
    assert (income.low, income.low_inclusive, income.high, income.high_inclusive) == (10.5, True, 20, False)


def test_condition_mask_selects_exactly_the_satisfying_rows():
    frame = pd.DataFrame(
        {"age": [29, 30, 50, 51, 40], "income": [1.0, 2.0, 3.0, 4.0, np.nan], "sex": ["F", "F", "M", "F", "F"]}
    )
    mask = parse({"sex": "F", "age": {"between": [30, 50]}}).mask(frame)
    assert mask.tolist() == [False, True, False, False, True]
    assert parse({"income": {"<=": 3}}).mask(frame).tolist() == [True, True, True, False, False]


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"nope": 1}, ["'nope'", "'age'", "'sex'"]),
        ({"sex": "X"}, ["'X'", "sex"]),
        ({"id": 3}, ["identifier"]),
        ({"age": {"between": [50, 30]}}, ["empty"]),
        ({"age": {"between": [30.2, 30.8]}}, ["empty"]),
        ({"age": {">=": 200}}, ["outside", "[17, 90]"]),
        ({"age": {"~": 3}}, ["'~'", "between"]),
        ({"income": 5.0}, ["between"]),
        ({"sex": {"between": [1, 2]}}, ["one value"]),
        ({"age": {">=": "old"}}, ["number"]),
    ],
)
def test_bad_conditions_name_what_is_valid(raw, words):
    with pytest.raises(InvalidConditionError) as info:
        parse(raw)
    for w in words:
        assert w in str(info.value)


def test_datetime_range_bounds_accept_dates():
    c = parse({"when": {"between": ["2001-01-01", "2002-01-01"]}})
    frame = pd.DataFrame({"when": pd.to_datetime(["2000-06-01", "2001-06-01", "2003-01-01"])})
    assert c.mask(frame).tolist() == [False, True, False]


def test_cli_condition_syntax():
    assert parse_condition_arg("income= >50K") == ("income", " >50K")
    assert parse_condition_arg("age>=30") == ("age", {">=": 30})
    assert parse_condition_arg("age<2.5") == ("age", {"<": 2.5})
    with pytest.raises(InvalidConditionError):
        parse_condition_arg("justtext")


def test_text_values_find_their_labels():
    labels = [" >50K", " <=50K"]
    assert coerce_text_value("income", ">50K", labels) == " >50K"
    assert coerce_text_value("income", " <=50K", labels) == " <=50K"
    assert coerce_text_value("income", "other", labels) == "other"


def test_constraints_hold_on_every_row():
    rng = np.random.default_rng(0)
    n = 5000
    table = pd.DataFrame(
        {
            "age": rng.normal(40, 30, n),
            "start": rng.normal(0, 1, n),
            "end": rng.normal(0, 1, n),
            "rel": rng.choice(["Husband", "Wife", "Other"], n),
            "sex": rng.choice(["Male", "Female"], n),
        }
    )
    training = pd.DataFrame({"rel": ["Husband", "Wife", "Other", "Other"], "sex": ["Male", "Female", "Male", "Female"]})
    cons = parse_constraints(
        [
            {"type": "bounds", "column": "age", "low": 18, "high": 90},
            {"type": "integer", "column": "age"},
            {"type": "inequality", "low": "start", "high": "end"},
            {"type": "fixed_combinations", "columns": ["rel", "sex"]},
        ]
    )
    cons[3].fit(training)
    before = cons[3].holds(table)
    assert not before.all()  # the test must start from violating rows
    out = apply_constraints(table.copy(), cons, rng)
    assert len(out) == n
    for c in cons:
        assert c.holds(out).all(), c
    assert out["age"].between(18, 90).all() and (out["age"] == out["age"].round()).all()
    # Repair keeps the anchor column: only rows that violated changed their combination.
    assert (out.loc[before, ["rel", "sex"]].to_numpy() == table.loc[before, ["rel", "sex"]].to_numpy()).all()
    # The first column (anchor) of every repaired row is kept where a valid combination exists for it.
    assert (out["rel"] == table["rel"]).all()


def test_fixed_combinations_respect_conditioned_column():
    c = FixedCombinations(columns=["rel", "sex"])
    c.fit(pd.DataFrame({"rel": ["Husband", "Wife"], "sex": ["Male", "Female"]}))
    table = pd.DataFrame({"rel": ["Husband"] * 50, "sex": ["Female"] * 50})
    out = c.apply(table.copy(), np.random.default_rng(0), fixed=["sex"])
    assert (out["sex"] == "Female").all() and (out["rel"] == "Wife").all()


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"type": "bounds", "column": "zzz", "low": 1}, ["'zzz'", "'age'"]),
        ({"type": "bounds", "column": "sex", "low": 1}, ["'sex'", "categorical"]),
        ({"type": "bounds", "column": "age"}, ["low"]),
        ({"type": "bounds", "column": "age", "low": 5, "high": 1}, ["above"]),
        ({"type": "inequality", "low": "age", "high": "sex"}, ["'sex'"]),
        ({"type": "fixed_combinations", "columns": ["sex"]}, ["two columns"]),
    ],
)
def test_bad_constraints_are_explained(spec, words):
    with pytest.raises(InvalidConstraintError) as info:
        parse_constraints([spec])[0].validate(SCHEMA)
    for w in words:
        assert w in str(info.value)


def test_unknown_constraint_type_lists_valid_types():
    with pytest.raises(InvalidConstraintError, match="bounds, integer, inequality, fixed_combinations"):
        parse_constraints([{"type": "unique"}])
    with pytest.raises(InvalidConstraintError, match="Bad fields"):
        parse_constraints([{"type": "integer", "col": "age"}])


def test_constraint_objects_pass_through():
    objs = [Bounds("age", low=0), Integer("age"), Inequality("a", "b")]
    assert parse_constraints(objs) == objs
