"""``python -m mlkeel.components.performance``."""

from mlkeel.components.performance.cli import main

main()
