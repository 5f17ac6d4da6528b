"""Evaluate stage: holdout metrics, confusion matrix and ROC curve, for the KFP UI and the MLflow run."""
