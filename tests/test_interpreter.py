"""The plain-language interpreter on a table of phrasings, each mapped to the spec fields it must give (no Ray)."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.requirements.interpreter import interpret
from engine.requirements.vocabulary import InterpretError

SCHEMA = {
    "columns": {
        "age": {"kind": "integer"},
        "fraud": {"kind": "integer", "values": [0, 1]},
        "tier": {"kind": "categorical", "values": ["basic", "gold", "premium"]},
        "credit_limit": {"kind": "continuous"},
        "sex": {"kind": "categorical", "values": [" Female", " Male"], "synonyms": ["gender"],
                "value_synonyms": {" Female": ["woman", "women"], " Male": ["man", "men"]}},
        "education": {"kind": "categorical", "values": ["11th", "Bachelors", "Doctorate", "HS-grad", "Masters"]},
        "hours-per-week": {"kind": "integer"},
        "smoker": {"kind": "boolean"},
        "opened": {"kind": "datetime"},
    }
}

B = {"between": [30, 50]}
CASES = [
    # counts: digits, separators, units, words
    ("10000 rows", {"num_rows": 10000}),
    ("10,000 rows", {"num_rows": 10000}),
    ("10k rows", {"num_rows": 10000}),
    ("1.5M records", {"num_rows": 1_500_000}),
    ("ten thousand rows", {"num_rows": 10000}),
    ("two hundred fifty rows", {"num_rows": 250}),
    ("a thousand customers", {"num_rows": 1000}),
    ("generate 2 million rows", {"num_rows": 2_000_000}),
    ("Give me 500 samples please.", {"num_rows": 500}),
    # comparisons, ranges, equality
    ("10000 rows where fraud = 1 and age between 30 and 50", {"num_rows": 10000, "conditions": {"fraud": 1, "age": B}}),
    ("100 rows with age over 40", {"num_rows": 100, "conditions": {"age": {">": 40}}}),
    ("100 rows where age is at least 40", {"num_rows": 100, "conditions": {"age": {">=": 40}}}),
    ("100 rows where age < 40", {"num_rows": 100, "conditions": {"age": {"<": 40}}}),
    ("100 rows where age is no more than 40", {"num_rows": 100, "conditions": {"age": {"<=": 40}}}),
    ("100 rows, ages 18 to 90", {"num_rows": 100, "conditions": {"age": {"between": [18, 90]}}}),
    ("100 rows, age from 50 to 30", {"num_rows": 100, "conditions": {"age": B}}),
    ("100 rows where age >= 30 and age <= 50", {"num_rows": 100, "conditions": {"age": {">=": 30, "<=": 50}}}),
    ("100 rows with a credit limit above 5k", {"num_rows": 100, "conditions": {"credit_limit": {">": 5000}}}),
    ("100 rows where hours per week at least forty", {"num_rows": 100, "conditions": {"hours-per-week": {">=": 40}}}),
    ("100 rows where opened after '2020-01-01'", {"num_rows": 100, "conditions": {"opened": {">": "2020-01-01"}}}),
    # categories: case, plurals, synonyms, quoted labels, value before its column
    ("100 rows where sex is female", {"num_rows": 100, "conditions": {"sex": " Female"}}),
    ("100 rows where SEX = FEMALE", {"num_rows": 100, "conditions": {"sex": " Female"}}),
    ("100 rows where gender is male", {"num_rows": 100, "conditions": {"sex": " Male"}}),
    ("100 women", {"num_rows": 100, "conditions": {"sex": " Female"}}),
    ("100 premium customers", {"num_rows": 100, "conditions": {"tier": "premium"}}),
    ("100 rows where education is 'HS-grad'", {"num_rows": 100, "conditions": {"education": "HS-grad"}}),
    ("100 rows with 11th education", {"num_rows": 100, "conditions": {"education": "11th"}}),
    ("100 rows, smokers", {"num_rows": 100, "conditions": {"smoker": True}}),
    ("100 rows where fraud is yes", {"num_rows": 100, "conditions": {"fraud": 1}}),
    # sets and negations
    ("100 rows where education is Bachelors, Masters or Doctorate",
     {"num_rows": 100, "conditions": {"education": {"in": ["Bachelors", "Masters", "Doctorate"]}}}),
    ("100 rows where education in (Bachelors, Masters)", {"num_rows": 100, "conditions": {"education": {"in": ["Bachelors", "Masters"]}}}),
    ("100 rows where tier is not basic", {"num_rows": 100, "conditions": {"tier": {"not_in": ["basic"]}}}),
    ("100 rows where tier isn't basic", {"num_rows": 100, "conditions": {"tier": {"not_in": ["basic"]}}}),
    ("100 rows where education not in (Bachelors, HS-grad)", {"num_rows": 100, "conditions": {"education": {"not_in": ["Bachelors", "HS-grad"]}}}),
    ("100 rows, not fraudulent", {"num_rows": 100, "conditions": {"fraud": 0}}),
    ("100 non-smokers", {"num_rows": 100, "conditions": {"smoker": False}}),
    ("100 rows where age is not over 40", {"num_rows": 100, "conditions": {"age": {"<=": 40}}}),
    # mixtures
    ("10,000 customers, a fifth of them fraudulent", {"num_rows": 10000, "mixture": {"fraud": {"1": 0.2, "0": 0.8}}}),
    ("500 rows, 20% fraud", {"num_rows": 500, "mixture": {"fraud": {"1": 0.2, "0": 0.8}}}),
    ("300 rows, 1 in 4 smokers", {"num_rows": 300, "mixture": {"smoker": {"True": 0.25, "False": 0.75}}}),
    ("a thousand rows, half of them men", {"num_rows": 1000, "mixture": {"sex": {" Male": 0.5, " Female": 0.5}}}),
    ("100 rows, 30% female and 70% male", {"num_rows": 100, "mixture": {"sex": {" Female": 0.3, " Male": 0.7}}}),
    ("three quarters of them premium, 1000 rows", {"num_rows": 1000, "mixture": {"tier": {"premium": 0.75}}}),
    ("100 rows, two fifths with fraud = 1", {"num_rows": 100, "mixture": {"fraud": {"1": 0.4, "0": 0.6}}}),
    # rules -> constraints
    ("10,000 customers, a fifth of them fraudulent, ages 18 to 90, every premium customer has a credit limit above 5,000",
     {"num_rows": 10000, "conditions": {"age": {"between": [18, 90]}}, "mixture": {"fraud": {"1": 0.2, "0": 0.8}},
      "constraints": [{"type": "conditional_bounds", "where": {"tier": "premium"}, "column": "credit_limit", "low": 5000}]}),
    ("100 rows, every row has age between 20 and 60", {"num_rows": 100, "constraints": [{"type": "bounds", "column": "age", "low": 20, "high": 60}]}),
    ("100 rows, each basic customer has a credit limit under 1000",
     {"num_rows": 100, "constraints": [{"type": "conditional_bounds", "where": {"tier": "basic"}, "column": "credit_limit", "high": 1000}]}),
    # misspellings (a close spelling is read, and noted)
    ("100 rows where agee > 4", {"num_rows": 100, "conditions": {"age": {">": 4}}}),
    ("100 rows where sex is femal", {"num_rows": 100, "conditions": {"sex": " Female"}}),
    ("100 rows where educaton is Masters", {"num_rows": 100, "conditions": {"education": "Masters"}}),
]


@pytest.mark.parametrize("prompt, expected", CASES, ids=[c[0][:48] for c in CASES])
def test_phrasing(prompt, expected):
    assert interpret(prompt, SCHEMA).request == expected


def test_the_table_is_large_enough():
    assert len(CASES) + len(REFUSALS) >= 40


def test_corrections_are_noted():
    result = interpret("100 rows where educaton is Masters, sex is femal", SCHEMA)
    assert any("'educaton'" in n and "'education'" in n for n in result.notes)
    assert any("'femal'" in n and "' Female'" in n for n in result.notes)
    assert interpret("100 rows where age > 3", SCHEMA).notes == []


INCOME = {"columns": {"income": {"kind": "categorical", "values": [" <=50K", " >50K"]}, "age": {"kind": "integer"}}}


@pytest.mark.parametrize("prompt, expected", [
    ("2000 rows, a fifth of them with income >50K", {"num_rows": 2000, "mixture": {"income": {" >50K": 0.2, " <=50K": 0.8}}}),
    ("100 rows where income <= 50k and age > 30", {"num_rows": 100, "conditions": {"income": " <=50K", "age": {">": 30}}}),
])
def test_a_label_that_reads_as_a_comparison_is_the_label(prompt, expected):
    """Adult's income labels '>50K' and '<=50K' were refused as comparisons on a column of categories."""
    assert interpret(prompt, INCOME).request == expected
    with pytest.raises(InterpretError, match="holds categories"):  # a comparison that spells no label still is one
        interpret("100 rows where income > 40K", INCOME)


REFUSALS = [
    ("100 rows where colour is red", ["'colour'", "'age'", "'tier'"]),
    ("100 rows where tier is platinum", ["'platinum'", "'basic', 'gold', 'premium'"]),
    ("100 rows where tier is premum", []),  # accepted below: a close spelling
    ("100 rows where sex is fmle", ["Did you mean"]),
    ("100 rows where age > banana", ["'banana'", "not a number"]),
    ("100 rows where tier > 4", ["'tier'", "categories"]),
    ("100 rows with 20% age over 3", ["share", "range"]),
    ("100 rows, 70% female, 60% male", ["130%"]),
    ("100 rows where sex is female and sex is male", ["twice"]),
    ("rows where age > 3", ["how many rows"]),
    ("0 rows", ["at least 1"]),
    ("100 rows where age is over 40 or", ["'or'"]),
    ("100 rows with purple unicorns", ["'purple unicorns'", "The columns are"]),
    ("100 rows, 100 rows", ["count twice"]),
    ("100 rows where age over", ["at its end"]),
    ("", ["empty"]),
]


@pytest.mark.parametrize("prompt, words", [r for r in REFUSALS if r[1]], ids=[r[0][:48] for r in REFUSALS if r[1]])
def test_refusal_quotes_the_words(prompt, words):
    with pytest.raises(InterpretError) as err:
        interpret(prompt, SCHEMA)
    for w in words:
        assert w in str(err.value)


def test_close_spelling_of_a_value():
    assert interpret("100 rows where tier is premum", SCHEMA).request["conditions"] == {"tier": "premium"}


def test_vocabulary_from_a_dataframe_and_metadata():
    frame = pd.DataFrame({"Age": [20, 30, 40], "fraud": [0, 1, 0], "Region": ["north", "south", "north"]})
    assert interpret("10 rows where age > 25 and region is South", frame).request == {
        "num_rows": 10, "conditions": {"Age": {">": 25}, "Region": "south"}}
    assert interpret("10 fraudulent rows", frame).request == {"num_rows": 10, "conditions": {"fraud": 1}}
    meta = {"columns": {"Region": {"synonyms": ["area"], "value_synonyms": {"north": ["northern"]}}}}
    assert interpret("10 rows where area is northern", frame, metadata=meta).request == {
        "num_rows": 10, "conditions": {"Region": "north"}}


def test_a_spec_from_an_interpretation():
    spec = interpret("50 rows, 20% fraud, age between 30 and 50", SCHEMA).to_spec(data="claims.csv", seed=3)
    assert spec.num_rows == 50 and spec.seed == 3 and spec.mixture == {"fraud": {"1": 0.2, "0": 0.8}}
    assert spec.engine_conditions() == {"age": {"between": [30, 50]}}
