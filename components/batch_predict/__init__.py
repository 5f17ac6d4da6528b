"""Batch predict stage: score a dataset with a registered model version and write a prediction log."""
