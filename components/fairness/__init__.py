"""Fairness stage: per-group selection rate, TPR and FPR of sensitive columns on the holdout; a threshold check."""
