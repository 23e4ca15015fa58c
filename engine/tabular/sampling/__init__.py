"""Row generation for tables: conditions met by the model or by rejection, constraints on every row."""
