"""The pipeline's edges: niches, sweeps and searches on Ray, result rows and Parquet stores.
Imports the evaluator, never the analysis or the CLI."""
