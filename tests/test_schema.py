"""Schema inference, overrides and the errors users see for bad tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.errors import InvalidDataError, InvalidSchemaError
from engine.schema import ColumnKind, TableSchema, infer_schema, read_table

K = ColumnKind


def every_kind(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "price": rng.normal(10, 2, n),
            "count": rng.integers(0, 5, n),
            "count_nullable": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
            "colour": rng.choice(["red", "green", "blue"], n),
            "flag": rng.random(n) < 0.5,
            "when": pd.date_range("2020-01-01", periods=n, freq="D"),
            "when_text": pd.date_range("2021-03-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "customer_id": np.arange(1000, 1000 + n),
            "code": [f"C-{i:05d}" for i in range(n)],
            "site": ["A"] * n,
            "empty": [np.nan] * n,
        }
    )


def test_adult_kinds(adult):
    s = infer_schema(adult)
    assert s["age"].kind == K.INTEGER and s["fnlwgt"].kind == K.INTEGER
    assert s["income"].kind == K.CATEGORICAL and s["native-country"].kind == K.CATEGORICAL
    assert s.num_rows == len(adult)


def test_every_kind_is_inferred():
    s = infer_schema(every_kind())
    got = {c.name: c.kind for c in s.columns}
    assert got == {
        "price": K.CONTINUOUS, "count": K.INTEGER, "count_nullable": K.INTEGER, "colour": K.CATEGORICAL,
        "flag": K.BOOLEAN, "when": K.DATETIME, "when_text": K.DATETIME, "customer_id": K.IDENTIFIER,
        "code": K.IDENTIFIER, "site": K.CONSTANT, "empty": K.CONSTANT,
    }
    assert s["when_text"].datetime_format == "%Y-%m-%d"
    assert s["count_nullable"].null_rate > 0
    assert TableSchema.from_json(s.to_json()) == s


def test_overrides_by_list_and_by_metadata(tmp_path):
    df = every_kind()
    s = infer_schema(df, categorical_columns=["count"], continuous_columns=["customer_id"])
    assert s["count"].kind == K.CATEGORICAL and s["customer_id"].kind == K.CONTINUOUS
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"columns": {"count": {"kind": "categorical"}, "code": {"kind": "categorical"}}}))
    s = infer_schema(df, metadata=str(meta))
    assert s["count"].kind == K.CATEGORICAL and s["code"].kind == K.CATEGORICAL


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"categorical_columns": ["nope"]}, InvalidSchemaError, ["'nope'", "'price'"]),
        ({"categorical_columns": ["count"], "continuous_columns": ["count"]}, InvalidSchemaError, ["'count'", "both"]),
        ({"continuous_columns": ["colour"]}, InvalidSchemaError, ["'colour'", "not numbers", "e.g."]),
        ({"integer_columns": ["price"]}, InvalidSchemaError, ["'price'", "fractional"]),
        ({"metadata": {"columns": {"price": {"kind": "fuzzy"}}}}, InvalidSchemaError, ["'fuzzy'", "continuous"]),
        ({"datetime_columns": ["colour"]}, InvalidSchemaError, ["'colour'", "datetime"]),
    ],
)
def test_bad_overrides_are_explained(kwargs, error, words):
    with pytest.raises(error) as info:
        infer_schema(every_kind(), **kwargs)
    for w in words:
        assert w in str(info.value)


def test_bad_columns_are_explained():
    with pytest.raises(InvalidDataError, match=r"'mixed'.*int.*str"):
        infer_schema(pd.DataFrame({"mixed": [1, "a", 2, "b"]}))
    with pytest.raises(InvalidDataError, match=r"'x'.*2 infinite"):
        infer_schema(pd.DataFrame({"x": [1.0, np.inf, -np.inf, 2.0]}))
    with pytest.raises(InvalidDataError, match="must be text"):
        infer_schema(pd.DataFrame(np.zeros((3, 2))))


def test_read_table_errors(tmp_path):
    with pytest.raises(InvalidDataError, match="does not exist"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(InvalidDataError, match="unsupported file type '.xlsx'"):
        read_table(tmp_path / "x.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidDataError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(InvalidDataError, match="no rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nonsense")
    with pytest.raises(InvalidDataError, match="bad.parquet"):
        read_table(tmp_path / "bad.parquet")
    every_kind().to_parquet(tmp_path / "ok.parquet")
    assert len(read_table(tmp_path / "ok.parquet")) == 40
