"""KFP component for the validate stage: a thin shell around ``mlkeel.components.validate.logic.validate``."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from mlkeel.images import stage_image


# Defaults are literals: KFP runs this function's source on its own, where no imported name is defined.
# A unit test checks them against logic's DEFAULT_MAX_INVALID_FRACTION and DEFAULT_MAX_CATEGORIES.
@dsl.component(base_image=stage_image("validate"), install_kfp_package=False)
def validate(
    dataset: Input[Dataset],
    valid: Output[Dataset],
    quarantine: Output[Dataset],
    schema: Output[Artifact],
    report: Output[Markdown],
    metrics: Output[Metrics],
    expected_schema: Optional[Input[Artifact]] = None,
    schema_uri: str = "",
    key_columns: Optional[list] = None,
    target_column: str = "",
    positive_label: str = "",
    max_invalid_fraction: float = 0.05,
    max_categories: int = 50,
    task: str = "",
) -> NamedTuple("ValidateOutputs", [("rows_valid", int), ("rows_quarantined", int), ("schema_hash", str)]):
    """Check a Parquet Dataset against a schema; pass on the valid rows, quarantine the others with reasons.

    Checks: values that do not convert to the schema type, nulls in non-nullable columns, numbers outside
    [minimum, maximum], text outside a closed category set, repeated keys (the first occurrence stays valid)
    and, with a target column, missing labels and a target that does not fit its task (a binary target must hold
    exactly 2 classes). Columns the schema does not
    list are dropped from the valid rows. The step fails when more than ``max_invalid_fraction`` of the rows
    are quarantined or the target is unusable, after writing every output.

    Args:
        dataset: Input Dataset (Parquet), e.g. ingest's output.
        valid: Output Dataset (Parquet): the rows that passed; the schema's columns, cast to its types.
            Metadata: num_rows, schema_hash, num_columns.
        quarantine: Output Dataset (Parquet): the rows that failed, with their original columns plus
            ``_mlkeel_source_row`` (0-based row in the input) and ``_mlkeel_reason`` (every reason). Always
            written, possibly with 0 rows. Metadata: num_rows, violations (rows per check).
        schema: Output Artifact (JSON): the schema used, given or inferred. Metadata: schema_hash,
            num_columns, key_columns, target_column.
        report: Output Markdown: counts per check and per column, example quarantined rows with reasons.
        metrics: Output Metrics: rows_in, rows_valid, rows_quarantined, invalid_fraction and
            quarantined_<check> for each check (type, null, range, category, duplicate_key, target_null).
        expected_schema: Optional Input Artifact (JSON): a schema to validate against, e.g. the champion's
            (champion stage); takes precedence over schema_uri.
        schema_uri: A schema JSON (path or URI) to validate against; "" (and no expected_schema) infers the
            schema from this dataset.
        key_columns: Columns whose values together identify a row; given with schema_uri, they replace its
            keys.
        target_column: The label column; given with schema_uri, it replaces its target.
        positive_label: The positive class of the target (labels compared as text), or "" to skip that check.
        max_invalid_fraction: Largest share of quarantined rows that still passes, in [0, 1].
        max_categories: When inferring: most distinct values a text column may have and still be categorical.
        task: The target's task: binary | multiclass | regression, or "" to infer it from the target's values
            (2 values: binary; at most 20 whole numbers or text values: multiclass; other numbers: regression).

    Returns:
        rows_valid: Rows that passed.
        rows_quarantined: Rows quarantined.
        schema_hash: The hash of the schema used, "sha256:<hex>".
    """
    from mlkeel.components.validate.logic import validate as run_validate

    outcome = run_validate(
        dataset.path,
        valid.path,
        quarantine.path,
        schema.path,
        report.path,
        schema_uri=expected_schema.path if expected_schema is not None else schema_uri,
        key_columns=key_columns or (),
        target_column=target_column,
        positive_label=positive_label,
        max_invalid_fraction=max_invalid_fraction,
        max_categories=max_categories,
        source=dataset.metadata.get("source") or dataset.uri,
        task=task,
    )
    valid.metadata.update(outcome.valid_metadata)
    quarantine.metadata.update(outcome.quarantine_metadata)
    schema.metadata.update(outcome.schema_metadata)
    for name, value in outcome.metrics.items():
        metrics.log_metric(name, value)

    class ValidateOutputs(NamedTuple):
        rows_valid: int
        rows_quarantined: int
        schema_hash: str

    return ValidateOutputs(outcome.rows_valid, outcome.rows_quarantined, outcome.schema_hash)
