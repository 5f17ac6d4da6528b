"""mlkeel's pipeline stages. Every stage folder has the same files (tests/test_layout.py enforces it).

logic.py        plain functions, no kfp import: the behaviour, unit-tested directly
component.py    the KFP component: a thin shell that unpacks artifacts and calls logic
cli.py          a click command calling the same logic (``python -m mlkeel.components.<stage>``)
__main__.py     runs cli.py
component.yaml  the compiled component (golden: ``mlkeel compile --check`` fails when stale)
README.md       generated from the component's docstring by ``mlkeel compile``
"""

# In pipeline order. Adding a stage: add it here, in pyproject.toml's package list, and an image under images/.
STAGES = (
    # training
    "ingest",
    "validate",
    "split",
    "train",
    # a hyperparameter search before train (the tuning pipeline)
    "tune",
    "evaluate",
    "fairness",
    "explain",
    "gate",
    "register",
    # monitoring
    "champion",
    "drift",
    "batch_predict",
    "performance",
    "push_metrics",
    # governance (after register, in the training pipeline)
    "model_card",
    # serving
    "deploy",
    # serving: the infrastructure check of the serving app (the app itself: ``mlkeel serve``)
    "serve",
)
