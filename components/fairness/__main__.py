"""``python -m mlkeel.components.fairness``."""

from mlkeel.components.fairness.cli import main

main()
