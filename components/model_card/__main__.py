"""``python -m mlkeel.components.model_card``."""

from mlkeel.components.model_card.cli import main

main()
