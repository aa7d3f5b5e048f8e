"""The pure evaluator: candidate chips x one scenario -> output columns (roofline, capacity,
parallel splits, global efficiency factors). No I/O; it imports neither Ray, Optuna, DuckDB
nor pandas (tests/dse/test_layers.py)."""
