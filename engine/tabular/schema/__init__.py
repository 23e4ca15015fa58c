"""Column kinds, schema inference from data, and validation with clear errors."""
from engine.tabular.schema.infer import infer_schema, validate_table
from engine.tabular.schema.io import read_metadata, read_table
from engine.tabular.schema.kinds import ColumnKind, ColumnSchema, TableSchema

__all__ = ["ColumnKind", "ColumnSchema", "TableSchema", "infer_schema", "read_metadata", "read_table", "validate_table"]
