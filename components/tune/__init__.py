"""The tune stage: a seeded hyperparameter search, one pipeline task per trial."""
