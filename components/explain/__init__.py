"""Explain stage: permutation importance of the model's input columns on the holdout; JSON table, PNG, HTML."""
