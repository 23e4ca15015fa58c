"""Built-in demo data sets (see README.md in this folder for provenance and licence)."""
from __future__ import annotations

from importlib import resources

import pandas as pd

ADULT_TARGET = "income"


def adult_path() -> str:
    """Path of the compressed UCI Adult CSV shipped with the package."""
    return str(resources.files(__package__).joinpath("adult.csv.gz"))


def load_adult() -> pd.DataFrame:
    """The UCI Adult table (32,561 rows, 15 columns, target ``income``)."""
    return pd.read_csv(adult_path())
