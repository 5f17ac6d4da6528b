"""``python -m mlkeel.components.register``."""

from mlkeel.components.register.cli import main

main()
