"""What every modality's report shares: values made ready for JSON."""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_ready(o: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN to None, keys to strings."""
    if isinstance(o, dict):
        return {str(k): json_ready(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_ready(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if math.isnan(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    return o
