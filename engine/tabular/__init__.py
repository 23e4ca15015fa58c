"""Tables: the ``TabularSynthesizer`` front door, schema, transforms, models, requirements, metrics."""
