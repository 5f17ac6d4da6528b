"""``python -m mlkeel.components.deploy``."""

from mlkeel.components.deploy.cli import main

main()
