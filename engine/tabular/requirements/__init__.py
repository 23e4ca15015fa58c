"""The user's request: conditions on the output and constraints that always hold."""
from engine.tabular.requirements.conditions import (
    CategoryCondition,
    Conditions,
    RangeCondition,
    parse_conditions,
)
from engine.tabular.requirements.constraints import (
    Bounds,
    ConditionalBounds,
    FixedCombinations,
    Inequality,
    Integer,
    apply_constraints,
    check_constraints,
    constraint_to_dict,
    constraints_hold,
    repair_constraints,
    parse_constraints,
)

__all__ = [
    "Bounds",
    "CategoryCondition",
    "ConditionalBounds",
    "Conditions",
    "FixedCombinations",
    "Inequality",
    "Integer",
    "RangeCondition",
    "apply_constraints",
    "check_constraints",
    "constraints_hold",
    "repair_constraints",
    "constraint_to_dict",
    "parse_conditions",
    "parse_constraints",
]
