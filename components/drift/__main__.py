"""``python -m mlkeel.components.drift``."""

from mlkeel.components.drift.cli import main

main()
