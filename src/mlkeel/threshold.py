"""The decision threshold: which positive-class probability makes a prediction positive, chosen by a policy.

A fixed 0.5 fails on imbalanced data: with 1.7 % positives a well-ranked model (good ROC AUC) rarely gives any
row a probability of 0.5, so it predicts no positive at all. Train chooses the threshold on a validation part of
the train split (never the holdout) by a policy, written as text so that the CLI, ``mlkeel run`` and the pipeline
parameter take the same value:

- ``f1``: the threshold with the best F1 on the validation rows (the default);
- ``precision:0.8``: the lowest threshold whose validation precision reaches 0.8 (the most recall at that
  precision);
- ``recall:0.6``: the highest threshold whose validation recall reaches 0.6 (the most precision at that recall);
- ``fixed:0.5``: that value, whatever the data.

The chosen threshold travels inside the saved model (``mlkeel.modeling.with_decision_threshold``), so evaluate,
gate, batch predict and serving all read it from the model they load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mlkeel.errors import ParameterError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD: Final = 0.5
# The default keeps the threshold at 0.5 for now: at its best-F1 threshold (0.299) the bundled Telco model fails
# the training pipeline's default fairness bounds (SeniorCitizen demographic parity 0.322 > 0.3, equalized odds
# 0.260 > 0.25, measured on its holdout), so switching the default is a fairness decision, not a code change.
# A one-class predictor is refused by the gate at any threshold; `f1` is one flag away.
DEFAULT_THRESHOLD_POLICY: Final = "fixed:0.5"
POLICY_KINDS: Final = ("f1", "precision", "recall", "fixed")
THRESHOLD_POLICY_HELP: Final = (
    "How train chooses the decision threshold on a validation part of the train split: f1 (best F1), "
    "precision:P (most recall with precision >= P), recall:R (most precision with recall >= R), fixed:T."
)


@dataclass(frozen=True)
class ThresholdPolicy:
    """A parsed threshold policy.

    Attributes:
        kind: ``f1``, ``precision``, ``recall`` or ``fixed``.
        value: The target precision or recall, or the fixed threshold; None for ``f1``.
    """

    kind: str
    value: float | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"

    @property
    def needs_validation(self) -> bool:
        """Whether the policy reads validation rows (every policy but ``fixed``)."""
        return self.kind != "fixed"


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold a policy chose, and how it did on the rows it was chosen on.

    Attributes:
        threshold: A prediction is positive when its probability is >= this.
        policy: The policy, as text (``f1``, ``precision:0.8``, ...).
        note: Why the policy could not be followed as asked ("" when it was), e.g. a precision no threshold
            reaches on the validation rows.
    """

    threshold: float
    policy: str
    note: str = ""


def parse_policy(text: str) -> ThresholdPolicy:
    """Parse ``f1``, ``precision:P``, ``recall:R`` or ``fixed:T`` (numbers in [0, 1]; "" means ``f1``).

    Args:
        text: The policy as given on a command line or as a pipeline parameter.

    Returns:
        The ``ThresholdPolicy``.

    Raises:
        ParameterError: an unknown kind, a missing or extra number, or a number outside its range.
    """
    raw = (text or DEFAULT_THRESHOLD_POLICY).strip().lower()
    kind, _, number = raw.partition(":")
    kind = kind.strip()
    if kind not in POLICY_KINDS:
        raise ParameterError(f"threshold policy {text!r}: expected f1, precision:P, recall:R or fixed:T")
    if kind == "f1":
        if number:
            raise ParameterError(f"threshold policy {text!r}: f1 takes no number")
        return ThresholdPolicy("f1")
    try:
        value = float(number)
    except ValueError as error:
        raise ParameterError(f"threshold policy {text!r}: {kind} needs a number, e.g. {kind}:0.8") from error
    # A precision or recall target of 0 is met by any threshold; fixed:0 and fixed:1 are allowed on purpose.
    low_ok = kind == "fixed"
    if not (0.0 <= value <= 1.0) or (value == 0.0 and not low_ok):
        raise ParameterError(f"threshold policy {text!r}: {kind} must be in {'[0, 1]' if low_ok else '(0, 1]'}")
    return ThresholdPolicy(kind, value)


def choose_threshold(labels: Any, scores: Any, policy: ThresholdPolicy | str) -> ThresholdChoice:
    """Choose the decision threshold on validation rows by ``policy`` (no I/O).

    Candidate thresholds are the distinct scores, so the chosen value is one a row really has: predicting
    positive at ``score >= threshold`` gives exactly the precision and recall measured here. Ties go to the
    higher threshold (fewer positives predicted).

    Args:
        labels: 0/1 labels of the validation rows.
        scores: Positive-class probabilities of the same rows.
        policy: A ``ThresholdPolicy`` or its text.

    Returns:
        The ``ThresholdChoice``. With one class only in ``labels`` nothing can be chosen: the threshold is
        ``DEFAULT_THRESHOLD`` (or the fixed one) and the note says why.
    """
    import numpy as np

    policy = parse_policy(policy) if isinstance(policy, str) else policy
    if policy.kind == "fixed":
        return ThresholdChoice(float(policy.value), str(policy))  # type: ignore[arg-type]
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=float)
    if len(np.unique(y)) < 2:
        return ThresholdChoice(
            DEFAULT_THRESHOLD,
            str(policy),
            f"the validation rows hold one class only ({len(y)} rows): kept {DEFAULT_THRESHOLD}",
        )
    thresholds, precision, recall = _curve(y, s)
    if policy.kind == "f1":
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
        )
        best = _last_max(f1)
        return ThresholdChoice(float(thresholds[best]), str(policy))
    target = float(policy.value)  # type: ignore[arg-type]
    if policy.kind == "precision":
        meets = np.flatnonzero(precision >= target)
        if len(meets):  # the lowest such threshold keeps the most recall
            return ThresholdChoice(float(thresholds[meets[0]]), str(policy))
        best = _last_max(precision)
        return ThresholdChoice(
            float(thresholds[best]),
            str(policy),
            f"no threshold reaches precision {target:g} on the validation rows; took the best, {precision[best]:.4f}",
        )
    meets = np.flatnonzero(recall >= target)  # recall falls as the threshold rises: the last one keeps precision
    return ThresholdChoice(float(thresholds[meets[-1]]), str(policy))


def _curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at each distinct score used as the threshold, thresholds ascending."""
    import numpy as np

    order = np.argsort(-s, kind="mergesort")
    sorted_scores, sorted_labels = s[order], y[order]
    true_positives = np.cumsum(sorted_labels)
    predicted = np.arange(1, len(s) + 1)
    last_of_each = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(s) - 1]  # rows >= each distinct score
    tp, pp = true_positives[last_of_each], predicted[last_of_each]
    precision = tp / pp
    recall = tp / y.sum()
    return sorted_scores[last_of_each][::-1], precision[::-1], recall[::-1]


def _last_max(values: np.ndarray) -> int:
    """Index of the maximum; among ties the last one (the highest threshold)."""
    import numpy as np

    return int(len(values) - 1 - np.argmax(values[::-1]))
