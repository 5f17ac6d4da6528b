"""Model card stage: an HTML and Markdown card per registered version, attached to the version in MLflow."""
