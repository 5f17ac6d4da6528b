"""``python -m mlkeel.components.explain``."""

from mlkeel.components.explain.cli import main

main()
