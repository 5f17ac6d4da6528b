"""Performance stage: join a prediction log with ground truth and flag a model whose live metrics degraded."""
