"""``python -m mlkeel.components.evaluate``."""

from mlkeel.components.evaluate.cli import main

main()
