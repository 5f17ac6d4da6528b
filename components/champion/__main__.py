"""``python -m mlkeel.components.champion``."""

from mlkeel.components.champion.cli import main

main()
