"""``python -m mlkeel.components.validate``."""

from mlkeel.components.validate.cli import main

main()
