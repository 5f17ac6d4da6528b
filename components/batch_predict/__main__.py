"""``python -m mlkeel.components.batch_predict``."""

from mlkeel.components.batch_predict.cli import main

main()
