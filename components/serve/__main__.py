"""``python -m mlkeel.components.serve``."""

from mlkeel.components.serve.cli import main

main()
