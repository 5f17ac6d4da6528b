"""Split stage: a deterministic train/test split, stratified on the target or by hashing a key column."""
