"""``python -m mlkeel.components.push_metrics``."""

from mlkeel.components.push_metrics.cli import main

main()
