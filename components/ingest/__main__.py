"""``python -m mlkeel.components.ingest``."""

from mlkeel.components.ingest.cli import main

main()
