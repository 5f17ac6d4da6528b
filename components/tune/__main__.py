"""``python -m mlkeel.components.tune``."""

from mlkeel.components.tune.cli import main

main()
