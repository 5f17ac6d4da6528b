"""KFP component for the ingest stage: a thin shell around ``mlkeel.components.ingest.logic.ingest``."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Dataset, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("ingest"), install_kfp_package=False)
def ingest(
    source_uri: str,
    dataset: Output[Dataset],
    file_format: str = "auto",
    column_types: Optional[dict] = None,
    delimiter: str = "auto",
) -> NamedTuple("IngestOutputs", [("fingerprint", str), ("num_rows", int)]):
    """Read a CSV or Parquet file, normalise its column types and write it as a Parquet Dataset.

    The content fingerprint (same rows and columns -> same fingerprint, whatever the file format or row order)
    is the data version that lineage records on every model trained from it.

    Args:
        source_uri: CSV or Parquet file; a local path or a pyarrow-filesystem URI (s3://, gs://, hdfs://).
            An empty string means the bundled IBM Telco churn dataset.
        dataset: Output Dataset (Parquet). Metadata: fingerprint, num_rows, num_columns, column_types, source,
            source_format, delimiter (a CSV's, detected or given).
        file_format: "auto" (by file suffix), "csv" or "parquet".
        column_types: Type overrides, column -> integer | float | string | boolean | timestamp.
        delimiter: CSV delimiter: "auto" (detected from the first 64 KiB: comma, semicolon, tab or pipe), one
            character, or "comma" | "semicolon" | "tab" | "pipe". A CSV read as one column whose header holds
            another delimiter fails, naming it.

    Returns:
        fingerprint: The content fingerprint, "sha256:<hex>".
        num_rows: Rows ingested.
    """
    from mlkeel.components.ingest.logic import ingest as run_ingest
    from mlkeel.data import resolve_source

    result = run_ingest(resolve_source(source_uri), dataset.path, file_format, column_types, delimiter)
    dataset.metadata.update(result.metadata)
    outputs = NamedTuple("IngestOutputs", [("fingerprint", str), ("num_rows", int)])
    return outputs(result.fingerprint, result.num_rows)
