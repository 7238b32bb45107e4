"""Read gradinv results (run folders, sweep folders or W&B) into tidy tables, paper tables and plots."""
