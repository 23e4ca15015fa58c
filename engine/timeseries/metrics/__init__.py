"""Time-series evaluation: scores (scores.py), the report with its SVG pictures (report.py), the evaluator."""
