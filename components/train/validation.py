"""Fit on part of the train split, choose the decision threshold on the rest, and report both parts' scores.

Multiclass and regression models (``fit_validated_task``) are cut and scored the same way, with no threshold: the
cut is stratified by class, or by quantile bins of a regression target (``mlkeel.task.stratify_labels``).

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
# A regression target needs this many train rows for a validation part (two per quantile bin at the least).
MIN_REGRESSION_ROWS_FOR_VALIDATION = 50
# The train metrics (the overfit check's side) are read on at most this many fit rows, a seeded stratified
# sample: on 260,000 flights, scoring every fit row took longer than the rest of the stage's own work, and a
# ROC AUC on 50,000 rows is within about 0.003 of the full one.
TRAIN_METRICS_MAX_ROWS = 50_000


@dataclass
class ValidatedFit:
    """A model fitted on the fit part, with the threshold chosen on the validation part.

    Attributes:
        model: The fitted Pipeline wrapped with its decision threshold (``mlkeel.modeling.with_decision_threshold``);
            for multiclass and regression, the fitted Pipeline itself.
        threshold: The decision threshold (None for multiclass and regression).
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
    threshold: float | None
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

    from mlkeel.metrics import classification_metrics, overfit_warning
    from mlkeel.modeling import one_native_thread, positive_scores, with_decision_threshold
    from mlkeel.threshold import DEFAULT_THRESHOLD, ThresholdChoice, choose_threshold

    labels = np.asarray(labels).astype(int)
    rarer = int(min(labels.sum(), len(labels) - labels.sum()))
    validate = rarer >= MIN_CLASS_ROWS_FOR_VALIDATION
    with one_native_thread():
        cut = _fit_on_cut(pipeline, features, labels, labels, validate, seed)
        fit_x, fit_y, val_y, scored_y = cut.fit_x, cut.fit_y, cut.val_y, cut.scored_y
        fit_scores = positive_scores(pipeline, cut.scored_x)
        val_scores = positive_scores(pipeline, cut.val_x) if validate else None
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
    return ValidatedFit(
        model=with_decision_threshold(pipeline, choice.threshold, fit_x, fit_y),
        threshold=choice.threshold,
        policy=choice.policy,
        note=choice.note,
        train_metrics=train_metrics,
        validation_metrics=validation_metrics,
        fit_rows=len(fit_y),
        validation_rows=0 if val_y is None else len(val_y),
        iterations=_iterations(pipeline),
        overfit_warning=warning,
    )


@dataclass
class _Cut:
    """The fit/validation cut of the train split, and the fit rows the train metrics are read on."""

    fit_x: Any
    fit_y: Any
    val_x: Any
    val_y: Any
    scored_x: Any
    scored_y: Any


def _fit_on_cut(
    pipeline: Any, features: Any, targets: Any, strata: Any, validate: bool, seed: int, always_fit: Any = None
) -> _Cut:
    """Cut (stratified by ``strata``, seeded) when ``validate``, fit ``pipeline`` on the fit part (in place).

    Rows where ``always_fit`` is True (None: none) are not cut: they all go to the fit part.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    if validate and always_fit is not None and np.any(always_fit):
        rows = np.flatnonzero(~np.asarray(always_fit))
        fit_rows, val_rows = train_test_split(
            rows, test_size=VALIDATION_FRACTION, stratify=np.asarray(strata)[rows], random_state=seed
        )
        fit_rows = np.sort(np.concatenate([fit_rows, np.flatnonzero(always_fit)]))
        fit_x, val_x = features.iloc[fit_rows], features.iloc[val_rows]
        fit_y, val_y = np.asarray(targets)[fit_rows], np.asarray(targets)[val_rows]
        fit_strata = None  # the train-metrics sample (above TRAIN_METRICS_MAX_ROWS) is then not stratified
    elif validate:
        fit_x, val_x, fit_y, val_y, fit_strata, _ = train_test_split(
            features, targets, strata, test_size=VALIDATION_FRACTION, stratify=strata, random_state=seed
        )
    else:
        fit_x, fit_y, val_x, val_y, fit_strata = features, targets, None, None, strata
    pipeline.fit(fit_x, fit_y)
    scored_x, scored_y = fit_x, fit_y
    if validate and len(fit_y) > TRAIN_METRICS_MAX_ROWS:
        scored_x, _, scored_y, _ = train_test_split(
            fit_x, fit_y, train_size=TRAIN_METRICS_MAX_ROWS, stratify=fit_strata, random_state=seed
        )
    return _Cut(fit_x, fit_y, val_x, val_y, scored_x, scored_y)


def _iterations(pipeline: Any) -> int | None:
    """Boosting iterations run (early stopping), or None for an estimator without ``n_iter_``."""
    import numpy as np

    iterations = getattr(pipeline.steps[-1][1], "n_iter_", None)
    return None if iterations is None or np.ndim(iterations) else int(iterations)


def fit_validated_task(
    pipeline: Any, features: pd.DataFrame, targets: np.ndarray, task: str, seed: int
) -> ValidatedFit:
    """Fit a multiclass or regression ``pipeline`` on the fit part and score both parts (no threshold).

    Args:
        pipeline: The unfitted scikit-learn Pipeline.
        features: The train split's feature columns.
        targets: Class labels as text (multiclass) or floats (regression), from ``modeling.task_targets``.
        task: ``multiclass`` or ``regression``.
        seed: Seed of the fit/validation cut.

    Returns:
        The ``ValidatedFit``, ``threshold`` None, ``note`` naming the classes of a single row (left out);
        metrics are ``mlkeel.metrics.task_metrics``'s. Rows of a class with fewer than
        ``MIN_CLASS_ROWS_FOR_VALIDATION`` rows all go to the fit part; without two classes (or, for regression,
        ``MIN_REGRESSION_ROWS_FOR_VALIDATION`` rows) left to validate on, the model is fitted on every row and
        only train metrics are reported.
    """
    import numpy as np
    import pandas as pd

    from mlkeel.metrics import overfit_warning, task_metrics
    from mlkeel.modeling import model_outputs, one_native_thread
    from mlkeel.task import Task, rare_rows, stratify_labels

    note = ""
    if task == Task.MULTICLASS:  # a class of one row cannot be learned, nor split by boosting's early stopping
        single = rare_rows(np.asarray(targets))
        if single.any():
            note = (
                f"class(es) {sorted(set(np.asarray(targets)[single]))[:10]} have a single train row: left out "
                "(a class needs at least 2 rows)"
            )
            logger.warning("train: %s", note)
            features, targets = features[~single], np.asarray(targets)[~single]
    strata = stratify_labels(pd.Series(targets), task)
    # Rows of a class too small to validate on stay in the fit part (the model still learns the class).
    always_fit = rare_rows(strata, MIN_CLASS_ROWS_FOR_VALIDATION if task == Task.MULTICLASS else 2)
    kept = strata[~always_fit]
    enough = len(set(kept)) >= 2 if task == Task.MULTICLASS else len(kept) >= MIN_REGRESSION_ROWS_FOR_VALIDATION
    validate = bool(enough)
    with one_native_thread():
        cut = _fit_on_cut(pipeline, features, targets, strata, validate, seed, always_fit)
        classes = [str(name) for name in getattr(pipeline, "classes_", [])]
        train_metrics = task_metrics(task, cut.scored_y, model_outputs(pipeline, cut.scored_x, task), classes)
        validation_metrics = (
            task_metrics(task, cut.val_y, model_outputs(pipeline, cut.val_x, task), classes) if validate else {}
        )
    warning = ""
    if validate and task == Task.MULTICLASS:
        warning = overfit_warning(train_metrics["roc_auc_ovr"], validation_metrics["roc_auc_ovr"])
    if warning:
        logger.warning("train: %s", warning)
    return ValidatedFit(
        model=pipeline,
        threshold=None,
        policy="",
        note=note,
        train_metrics=train_metrics,
        validation_metrics=validation_metrics,
        fit_rows=len(cut.fit_y),
        validation_rows=0 if cut.val_y is None else len(cut.val_y),
        iterations=_iterations(pipeline),
        overfit_warning=warning,
    )
