"""Reading results: SQL over runs, ranking, reports and plots, validation and calibration
against measured chips. Imports the pipeline and the evaluator, never the CLI."""
