"""Schema inference, overrides and the errors users see for bad tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import InvalidDataError, InvalidSchemaError
from engine.tabular.schema import ColumnKind, TableSchema, infer_schema, read_metadata, read_table, validate_table

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


def test_read_table_sources(tmp_path):
    df = every_kind()
    assert read_table(df) is df
    import pyarrow as pa

    assert read_table(pa.Table.from_pandas(df)).shape == df.shape
    folder = tmp_path / "parts"
    folder.mkdir()
    df.iloc[:15].to_parquet(folder / "a.parquet")
    df.iloc[15:].to_parquet(folder / "b.parquet")
    assert len(read_table(folder)) == 40
    df.to_csv(tmp_path / "t.csv.gz", index=False)
    assert read_table(str(tmp_path / "t.csv.gz"))["colour"].tolist() == df["colour"].tolist()
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InvalidDataError, match="broken.csv.gz"):
        read_table(tmp_path / "broken.csv.gz")
    (tmp_path / "no_parquet").mkdir()
    with pytest.raises(InvalidDataError, match="no_parquet.*no .parquet"):
        read_table(tmp_path / "no_parquet")
    with pytest.raises(InvalidDataError, match="no columns"):
        read_table(pd.DataFrame(index=range(3)))


def test_inference_rules_for_nulls_and_object_columns():
    n = 30
    df = pd.DataFrame(
        {
            "b": [True, False, None] * 10,  # object column of Python bools and nulls
            "f": [1.0, np.nan, 3.0] * 10,  # float only because of NaN
            "allnull": [None] * n,
            "label": ["x", "y", "z"] * 10,
            "user_id": np.arange(n) * 7,  # unique integers named like an id
            "amount": np.arange(n) * 7,  # the same values under an ordinary name
        }
    )
    s = infer_schema(df)
    assert [s[c].kind for c in df.columns] == [K.BOOLEAN, K.INTEGER, K.CONSTANT, K.CATEGORICAL, K.IDENTIFIER, K.INTEGER]
    assert s["allnull"].null_rate == 1.0 and np.isclose(s["b"].null_rate, 1 / 3)


def test_metadata_in_saved_schema_format_and_as_file(tmp_path):
    df = every_kind()
    saved = infer_schema(df, categorical_columns=["count"]).to_dict()
    assert infer_schema(df, metadata=saved)["count"].kind == K.CATEGORICAL
    assert read_metadata({"columns": {"a": {"kind": "integer"}}}) == {"a": "integer"}
    with pytest.raises(InvalidSchemaError, match="nope.json"):
        infer_schema(df, metadata=str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidSchemaError, match="not valid JSON"):
        infer_schema(df, metadata=str(tmp_path / "bad.json"))
    with pytest.raises(InvalidSchemaError, match=r"metadata names column 'ghost'.*'price'"):
        infer_schema(df, metadata={"columns": {"ghost": {"kind": "integer"}}})


def test_validate_table_names_the_column():
    df = every_kind()
    schema = infer_schema(df)
    validate_table(df, schema)
    with pytest.raises(InvalidDataError, match=r"lacks column\(s\) 'colour'"):
        validate_table(df.drop(columns="colour"), schema)
    with pytest.raises(InvalidDataError, match=r"'price' should hold numbers.*'oops'"):
        validate_table(df.assign(price=["oops"] + [1.0] * 39), schema)
    with pytest.raises(InvalidDataError, match=r"'when_text' should hold dates in the layout '%Y-%m-%d'.*'soon'"):
        validate_table(df.assign(when_text=["soon"] + df["when_text"].tolist()[1:]), schema)
