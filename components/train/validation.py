"""Fit on part of the train split, choose the decision threshold on the rest, and report both parts' scores.

The train split is cut (stratified, seeded) into a fit part and a validation part of ``VALIDATION_FRACTION``. The
Pipeline is fitted on the fit part only; the threshold policy (``mlkeel.threshold``) reads the validation part's
scores; train and validation metrics are both at the chosen threshold, so a large gap between them shows
overfitting (``mlkeel.metrics.overfit_warning``). The holdout (test split) is never read here: it stays the
evaluate and gate stages' unseen rows. The model shipped is the one fitted on the fit part (not refitted on all
rows), so the threshold and the validation scores describe exactly the model that is saved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlkeel.threshold import ThresholdPolicy

logger = logging.getLogger(__name__)

# Share of the train split kept aside to choose the threshold and to measure overfitting.
VALIDATION_FRACTION = 0.2
# Below this many rows of the rarer class, a validation part would hold one or two positives: the threshold
# would be chosen on noise. Then the model is fitted on every train row and the policy falls back to 0.5.
MIN_CLASS_ROWS_FOR_VALIDATION = 10
# The train metrics (the overfit check's side) are read on at most this many fit rows, a seeded stratified
# sample: on 260,000 flights, scoring every fit row took longer than the rest of the stage's own work, and a
# ROC AUC on 50,000 rows is within about 0.003 of the full one.
TRAIN_METRICS_MAX_ROWS = 50_000


@dataclass
class ValidatedFit:
    """A model fitted on the fit part, with the threshold chosen on the validation part.

    Attributes:
        model: The fitted Pipeline wrapped with its decision threshold (``mlkeel.modeling.with_decision_threshold``).
        threshold: The decision threshold.
        policy: The threshold policy, as text.
        note: Why the policy could not be followed as asked ("" when it was).
        train_metrics: Metrics on the fit part (at most ``TRAIN_METRICS_MAX_ROWS`` of its rows), at ``threshold``.
        validation_metrics: Metrics on the validation part, at ``threshold`` ({} without a validation part).
        fit_rows: Rows fitted on.
        validation_rows: Rows in the validation part (0 without one).
        iterations: Boosting iterations actually run (early stopping), or None for other estimators.
        overfit_warning: The overfitting warning line, or "".
    """

    model: Any
    threshold: float
    policy: str
    note: str = ""
    train_metrics: dict[str, float] = field(default_factory=dict)
    validation_metrics: dict[str, float] = field(default_factory=dict)
    fit_rows: int = 0
    validation_rows: int = 0
    iterations: int | None = None
    overfit_warning: str = ""


def fit_validated(
    pipeline: Any, features: pd.DataFrame, labels: np.ndarray, policy: ThresholdPolicy, seed: int
) -> ValidatedFit:
    """Fit ``pipeline`` on the fit part, choose the threshold on the validation part, wrap the model with it.

    Args:
        pipeline: The unfitted scikit-learn Pipeline.
        features: The train split's feature columns.
        labels: Its 0/1 labels.
        policy: The threshold policy.
        seed: Seed of the stratified fit/validation cut.

    Returns:
        The ``ValidatedFit``.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    from mlkeel.metrics import classification_metrics, overfit_warning
    from mlkeel.modeling import one_native_thread, positive_scores, with_decision_threshold
    from mlkeel.threshold import DEFAULT_THRESHOLD, ThresholdChoice, choose_threshold

    labels = np.asarray(labels).astype(int)
    rarer = int(min(labels.sum(), len(labels) - labels.sum()))
    validate = rarer >= MIN_CLASS_ROWS_FOR_VALIDATION
    if validate:
        fit_x, val_x, fit_y, val_y = train_test_split(
            features, labels, test_size=VALIDATION_FRACTION, stratify=labels, random_state=seed
        )
    else:
        fit_x, fit_y, val_x, val_y = features, labels, None, None
    with one_native_thread():
        pipeline.fit(fit_x, fit_y)
        scored_x, scored_y = fit_x, fit_y
        if validate and len(fit_y) > TRAIN_METRICS_MAX_ROWS:
            scored_x, _, scored_y, _ = train_test_split(
                fit_x, fit_y, train_size=TRAIN_METRICS_MAX_ROWS, stratify=fit_y, random_state=seed
            )
        fit_scores = positive_scores(pipeline, scored_x)
        val_scores = positive_scores(pipeline, val_x) if validate else None
    if val_scores is not None:
        choice = choose_threshold(val_y, val_scores, policy)
    elif policy.needs_validation:
        choice = ThresholdChoice(
            DEFAULT_THRESHOLD,
            str(policy),
            f"only {rarer} train rows of the rarer class (< {MIN_CLASS_ROWS_FOR_VALIDATION}): no validation part, "
            f"kept {DEFAULT_THRESHOLD}",
        )
    else:
        choice = choose_threshold(scored_y, fit_scores, policy)
    train_metrics = classification_metrics(scored_y, fit_scores, choice.threshold)
    validation_metrics = {} if val_scores is None else classification_metrics(val_y, val_scores, choice.threshold)
    warning = overfit_warning(train_metrics["roc_auc"], validation_metrics["roc_auc"]) if validate else ""
    for line in (choice.note, warning):
        if line:
            logger.warning("train: %s", line)
    classifier = pipeline.steps[-1][1]
    iterations = getattr(classifier, "n_iter_", None)
    return ValidatedFit(
        model=with_decision_threshold(pipeline, choice.threshold, fit_x, fit_y),
        threshold=choice.threshold,
        policy=choice.policy,
        note=choice.note,
        train_metrics=train_metrics,
        validation_metrics=validation_metrics,
        fit_rows=len(fit_y),
        validation_rows=0 if val_y is None else len(val_y),
        iterations=None if iterations is None or np.ndim(iterations) else int(iterations),
        overfit_warning=warning,
    )
