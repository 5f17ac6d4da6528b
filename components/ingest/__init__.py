"""Ingest stage: CSV/Parquet (local or URI) -> normalised Parquet Dataset with a content fingerprint."""
