"""Drift stage: test a current batch against reference data (alibi-detect TabularDrift, PSI); JSON + HTML."""
