"""``python -m mlkeel.components.split``."""

from mlkeel.components.split.cli import main

main()
