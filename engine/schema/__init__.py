"""Column kinds, schema inference from data, and validation with clear errors."""
from engine.schema.kinds import ColumnKind, ColumnSchema, TableSchema

__all__ = ["ColumnKind", "ColumnSchema", "TableSchema"]
