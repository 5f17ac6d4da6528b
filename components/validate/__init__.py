"""Validate stage: check a Parquet Dataset against a schema: valid rows, quarantined rows, report."""
