"""``python -m mlkeel.components.train``."""

from mlkeel.components.train.cli import main

main()
