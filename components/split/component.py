"""KFP component for the split stage: a thin shell around ``mlkeel.components.split.logic.split``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("split"), install_kfp_package=False)
def split(
    dataset: Input[Dataset],
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    target_column: str = "",
    positive_label: str = "",
    test_fraction: float = 0.2,
    seed: int = 42,
    hash_key_column: str = "",
    task: str = "",
):
    """Split a Parquet Dataset into train and test parts, deterministically.

    Stratified on the target with a seed by default (a class target by class, a regression target by quantile
    bins of its value); with ``hash_key_column`` a row's side depends only on its key, so it is stable across
    data versions.

    Args:
        dataset: Input Dataset (Parquet), e.g. the valid rows of the validate stage.
        train_data: Output Dataset (Parquet): the train part. Metadata: rows, mode, positive rate (binary), task
            and task_reason (the inference and why).
        test_data: Output Dataset (Parquet): the test (holdout) part. Metadata: as train_data.
        target_column: Stratify on this column ("" = plain seeded random split).
        positive_label: Only used to report each part's positive rate.
        test_fraction: Share of rows in the test part, in (0, 1).
        seed: Random seed of the split.
        hash_key_column: Split by hashing this key column instead ("" = off).
        task: The target's task: binary | multiclass | regression, or "" to infer it from the target.
    """
    from mlkeel.components.split.logic import split as run_split

    result = run_split(
        dataset.path,
        train_data.path,
        test_data.path,
        target_column,
        positive_label,
        test_fraction,
        seed,
        hash_key_column,
        source=dataset.metadata.get("source", dataset.uri),
        task=task,
    )
    task_metadata = {"task": result.task, "task_reason": result.task_reason}
    train_data.metadata.update(
        {"rows": result.train_rows, "mode": result.mode, "positive_rate": result.train_positive_rate, **task_metadata}
    )
    test_data.metadata.update(
        {"rows": result.test_rows, "mode": result.mode, "positive_rate": result.test_positive_rate, **task_metadata}
    )
