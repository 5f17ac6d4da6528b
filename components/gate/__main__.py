"""``python -m mlkeel.components.gate``."""

from mlkeel.components.gate.cli import main

main()
