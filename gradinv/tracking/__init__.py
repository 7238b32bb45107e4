"""Experiment tracking: W&B and CSV loggers, results.json and the reconstruction picture."""
