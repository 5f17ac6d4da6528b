"""Deploy stage: serve a blessed model version on Kubernetes (rolling, blue-green or canary, with rollback)."""
