"""Train stage: one scikit-learn Pipeline (preprocessing fitted on train only + estimator), logged to MLflow."""
