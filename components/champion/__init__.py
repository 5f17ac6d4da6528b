"""Champion stage: look up the registry's champion and fetch what it was trained on (schema, reference data)."""
