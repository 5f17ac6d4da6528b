"""Ingest: read a CSV or Parquet file (local or any pyarrow-filesystem URI), normalise types, fingerprint it.

Plain functions on Arrow tables and paths; no kfp import. The KFP shell is ``component.py``, the command line
``cli.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from mlkeel.errors import DataError, ParameterError
from mlkeel.storage import (
    READ_RETRY_POLICY,
    display_uri,
    is_transient_io_error,
    read_with_retries,
    redact,
    require_readable_file,
    write_parquet_atomic,
)

if TYPE_CHECKING:
    import pyarrow as pa

# Text that means "no value" in a CSV export (pandas' defaults, minus "NA"/"N/A" lookalikes kept as null too).
NULL_TOKENS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "-NaN", "-nan"]
SUPPORTED_TYPES = ("integer", "float", "string", "boolean", "timestamp")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
PANDAS_INDEX_COLUMN = re.compile(r"__index_level_\d+__")
# CSV delimiters detected, in order of preference when two split the sample equally well.
DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
DELIMITER_SAMPLE_BYTES = 1 << 16
# A number written with a decimal comma ("10,5"), as exports with a semicolon/tab/pipe delimiter write them.
DECIMAL_COMMA_NUMBER = r"^\s*[+-]?\d+(,\d+)?\s*$"


class SourceTable(NamedTuple):
    """A source file as read: the table (types not yet normalised), its format and, for a CSV, its delimiter."""

    table: pa.Table
    format: str
    delimiter: str = ""


@dataclass(frozen=True)
class IngestResult:
    """What ingest produced.

    Attributes:
        source: The source, printable (credentials and query removed).
        source_format: ``csv`` or ``parquet``.
        num_rows: Rows written.
        column_types: Column name -> logical type (``integer``, ``float``, ``string``, ``boolean``, ``timestamp``).
        fingerprint: Content fingerprint (``sha256:...``): same for the same rows and columns whatever the file
            format or row order; it is the data version that lineage records.
        delimiter: A CSV's delimiter by name (``comma``, ``semicolon``, ``tab``, ``pipe`` or the character),
            detected or given; empty for Parquet.
    """

    source: str
    source_format: str
    num_rows: int
    column_types: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    delimiter: str = ""

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP artifact metadata (flat, JSON-serialisable)."""
        return {
            "source": self.source,
            "source_format": self.source_format,
            "num_rows": self.num_rows,
            "num_columns": len(self.column_types),
            "column_types": self.column_types,
            "fingerprint": self.fingerprint,
            "delimiter": self.delimiter,
        }


def detect_format(path: str, file_format: str = "auto") -> str:
    """Decide whether ``path`` is CSV or Parquet.

    Args:
        path: File path or URI.
        file_format: ``auto`` (by file suffix), ``csv`` or ``parquet``.

    Returns:
        ``csv`` or ``parquet``.

    Raises:
        ParameterError: ``file_format`` is unknown, or ``auto`` cannot tell from the suffix.
    """
    if file_format in ("csv", "parquet"):
        return file_format
    if file_format != "auto":
        raise ParameterError(f"file_format={file_format!r}: expected 'auto', 'csv' or 'parquet'")
    lowered = display_uri(path).lower()  # without a query such as ?endpoint_override=...
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    if lowered.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ParameterError(
        f"{display_uri(path)}: cannot tell the file format from its name; pass file_format='csv' or 'parquet'"
    )


def resolve_delimiter(delimiter: str) -> str:
    r"""Turn a delimiter setting into the character, or ``auto``.

    Args:
        delimiter: ``auto``, one character, or a name: ``comma``, ``semicolon``, ``tab``, ``pipe`` (also ``\t``).

    Returns:
        ``auto`` or the one-character delimiter.

    Raises:
        ParameterError: anything else.
    """
    if delimiter == "auto":
        return delimiter
    if delimiter in DELIMITERS:
        return DELIMITERS[delimiter]
    if delimiter == "\\t":
        return "\t"
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise ParameterError(
            f"delimiter={delimiter!r}: expected 'auto', one character, or one of {', '.join(DELIMITERS)}"
        )
    return delimiter


def detect_delimiter(sample: str) -> str:
    """The delimiter (comma, semicolon, tab or pipe) that splits the first lines of a CSV most consistently.

    Each candidate parses the sample with the ``csv`` module (quotes respected); it qualifies when the header has
    at least two fields and at least 90 % of the other complete lines have as many; the one giving the most fields
    wins (ties: the order of ``DELIMITERS``). A sample no candidate splits is one column: comma.

    Args:
        sample: The start of the file, decoded (a last line cut short is ignored).

    Returns:
        The delimiter character.
    """
    import csv

    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # cut by the sample size
    best, best_fields = ",", 1
    for candidate in DELIMITERS.values():
        rows = [row for row in csv.reader(lines, delimiter=candidate) if row]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        agreeing = sum(1 for row in rows[1:] if len(row) == width)
        if (len(rows) == 1 or agreeing >= 0.9 * (len(rows) - 1)) and width > best_fields:
            best, best_fields = candidate, width
    return best


def _read_sample(filesystem: Any, path: str) -> str:
    with filesystem.open_input_stream(path, compression="detect") as stream:
        return stream.read(DELIMITER_SAMPLE_BYTES).decode("utf-8", errors="replace")


def _delimiter_name(delimiter: str) -> str:
    names = {character: name for name, character in DELIMITERS.items()}
    return names.get(delimiter, repr(delimiter))


def read_source(
    source_uri: str, file_format: str = "auto", dictionary_columns: Sequence[str] = (), delimiter: str = "auto"
) -> SourceTable:
    """Read a CSV or Parquet file into an Arrow table, with errors that name the file.

    Args:
        source_uri: Local path or pyarrow-filesystem URI.
        file_format: ``auto``, ``csv`` or ``parquet``.
        dictionary_columns: Parquet text columns to read dictionary-encoded (their values decoded once per
            row group instead of once per row: faster for categorical columns); other columns ignore it.
        delimiter: CSV only: ``auto`` (detected from the first 64 KiB: comma, semicolon, tab or pipe, see
            ``detect_delimiter``), one character, or ``comma``, ``semicolon``, ``tab``, ``pipe``.

    Returns:
        A ``SourceTable``: ``(table, format, delimiter)``, the table as read (types not yet normalised) and,
        for a CSV, the delimiter used (detected or given) by name.

    Raises:
        DataError: missing, empty, unreadable or corrupted file; a file with a header but no rows; a CSV read as
            one column whose header holds another delimiter.
        ParameterError: a bad ``delimiter``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    shown = display_uri(source_uri)
    resolved_format = detect_format(source_uri, file_format)
    filesystem, path, _ = require_readable_file(source_uri)
    delimiter = resolve_delimiter(delimiter)

    def read() -> pa.Table:
        if resolved_format == "csv":
            nonlocal delimiter
            if delimiter == "auto":
                delimiter = detect_delimiter(_read_sample(filesystem, path))
            with filesystem.open_input_stream(path, compression="detect") as stream:
                return pacsv.read_csv(
                    stream,
                    parse_options=pacsv.ParseOptions(delimiter=delimiter),
                    convert_options=pacsv.ConvertOptions(
                        null_values=NULL_TOKENS, strings_can_be_null=True, quoted_strings_can_be_null=True
                    ),
                )
        table = pq.read_table(path, filesystem=filesystem, read_dictionary=list(dictionary_columns) or None)
        # A pandas index saved by DataFrame.to_parquet() is bookkeeping, not data.
        pandas_index = [name for name in table.column_names if PANDAS_INDEX_COLUMN.fullmatch(str(name))]
        return table.drop_columns(pandas_index)

    try:
        # An object store's transient errors (dropped connection, 5xx) are retried; a corrupt file is not.
        table = read_with_retries(source_uri, read)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as error:
        if is_transient_io_error(error):
            raise DataError(
                f"{shown}: could not read after {READ_RETRY_POLICY.attempts} attempts (transient errors): "
                f"{redact(str(error), source_uri)}"
            ) from error
        hint = " (corrupted or truncated, or not Parquet?)" if resolved_format == "parquet" else ""
        raise DataError(
            f"{shown}: not a readable {resolved_format.upper()} file{hint}: {redact(str(error), source_uri)}"
        ) from error
    if table.num_columns == 0:
        raise DataError(f"{shown}: no columns found")
    if resolved_format == "csv" and table.num_columns == 1:
        header = str(table.column_names[0])
        others = [name for name, character in DELIMITERS.items() if character != delimiter and character in header]
        if others:
            raise DataError(
                f"{shown}: read as one column {header[:80]!r} with delimiter {_delimiter_name(delimiter)}, but the "
                f"header holds {' and '.join(others)} characters; pass delimiter={others[0]!r} (--delimiter "
                f"{others[0]})"
            )
    if table.num_rows == 0:
        raise DataError(f"{shown}: has a header ({table.num_columns} columns) but no data rows")
    if resolved_format == "csv" and delimiter != ",":
        table = parse_decimal_commas(table)
    return SourceTable(table, resolved_format, _delimiter_name(delimiter) if resolved_format == "csv" else "")


def parse_decimal_commas(table: pa.Table) -> pa.Table:
    """Turn text columns whose every value is a number with a decimal comma (``10,5``) into float columns.

    Spreadsheets in most of Europe export semicolon-separated CSVs whose numbers have a decimal comma; read as
    text, ``MonthlyCharges`` would become a category of thousands of levels. Only columns where every non-null
    value has that form, and at least one has a comma, change; a comma-delimited file never has them unquoted.

    Args:
        table: A table as read from a CSV.

    Returns:
        The table with those columns as ``float64``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, name in enumerate(table.column_names):
        column = table.column(index)
        if not pa.types.is_string(column.type) or column.null_count == len(column):
            continue
        values = column.drop_null()
        if (
            pc.all(pc.match_substring_regex(values, DECIMAL_COMMA_NUMBER)).as_py()
            and pc.any(pc.match_substring(values, ",")).as_py()
        ):
            numbers = pc.cast(pc.utf8_trim_whitespace(pc.replace_substring(column, ",", ".")), pa.float64())
            table = table.set_column(index, name, numbers)
    return table


def iter_parquet_batches(
    source_uri: str, columns: Sequence[str], batch_rows: int, dictionary_columns: Sequence[str] = ()
) -> Iterator[pa.RecordBatch]:
    """Read a Parquet file's record batches in bounded memory: about one row group and one batch at a time.

    Pre-buffering is off: with it, pyarrow (both ``ParquetFile`` and ``pyarrow.dataset`` scanners) reads the
    column chunks of many row groups ahead, 1 GB for a 10M-row file of 40 row groups (measured).

    Args:
        source_uri: Local path or pyarrow-filesystem URI (already opened once with ``open_parquet_dataset``).
        columns: The columns to read.
        batch_rows: Rows per batch (the last one of each row group may be shorter).
        dictionary_columns: Text columns to read dictionary-encoded (see ``read_source``).

    Yields:
        The record batches, in file order.
    """
    import pyarrow.parquet as pq

    filesystem, path, _ = require_readable_file(source_uri)
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle, read_dictionary=list(dictionary_columns) or None, pre_buffer=False)
        yield from parquet.iter_batches(batch_size=batch_rows, columns=list(columns))


def open_parquet_dataset(source_uri: str) -> tuple[Any, list[str]]:
    """Open a Parquet file as a ``pyarrow.dataset`` to read in record batches (nothing is read yet).

    Args:
        source_uri: Local path or pyarrow-filesystem URI.

    Returns:
        ``(dataset, columns)``: the dataset, and its data columns (a saved pandas index left out, as
        ``read_source`` does).

    Raises:
        DataError: missing, empty or unreadable file; no columns; no rows.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    shown = display_uri(source_uri)
    filesystem, path, _ = require_readable_file(source_uri)
    try:
        dataset = ds.dataset(path, format="parquet", filesystem=filesystem)
        rows = dataset.count_rows()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise DataError(
            f"{shown}: not a readable PARQUET file (corrupted or truncated, or not Parquet?): {error}"
        ) from error
    columns = [name for name in dataset.schema.names if not PANDAS_INDEX_COLUMN.fullmatch(str(name))]
    if not columns:
        raise DataError(f"{shown}: no columns found")
    if rows == 0:
        raise DataError(f"{shown}: has a header ({len(columns)} columns) but no data rows")
    return dataset, columns


def logical_type(arrow_type: pa.DataType) -> str:
    """Map an Arrow type to mlkeel's logical type name.

    Args:
        arrow_type: Any Arrow data type.

    Returns:
        One of ``integer``, ``float``, ``string``, ``boolean``, ``timestamp``, or ``null`` (no value at all).
    """
    import pyarrow.types as pat

    if pat.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type)
    if pat.is_boolean(arrow_type):
        return "boolean"
    if pat.is_integer(arrow_type):
        return "integer"
    if pat.is_floating(arrow_type) or pat.is_decimal(arrow_type):
        return "float"
    if pat.is_timestamp(arrow_type) or pat.is_date(arrow_type):
        return "timestamp"
    if pat.is_null(arrow_type):
        return "null"
    return "string"


def arrow_type_for(name: str) -> pa.DataType:
    """Return the Arrow type that stores the logical type ``name``.

    Args:
        name: A logical type from ``SUPPORTED_TYPES``.

    Returns:
        The Arrow storage type.

    Raises:
        ParameterError: unknown type name.
    """
    import pyarrow as pa

    types = {
        "integer": pa.int64(),
        "float": pa.float64(),
        "string": pa.string(),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("us"),
    }
    if name not in types:
        raise ParameterError(f"unknown column type {name!r}: expected one of {', '.join(SUPPORTED_TYPES)}")
    return types[name]


def first_failed_cast(column: pa.ChunkedArray, target: pa.DataType) -> tuple[int, str] | None:
    """Find the first value of ``column`` that cannot be cast to ``target``.

    Args:
        column: A string (or any) column.
        target: The Arrow type to cast to.

    Returns:
        ``(row_index, value)`` of the first failure, or None when every value casts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.cast(column, target)
        return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Rare path (an error is about to be raised): bisect the chunks, then the rows, for the first bad value.
    offset = 0
    for chunk in column.chunks:
        low, high = 0, len(chunk)
        while high - low > 1:
            middle = (low + high) // 2
            try:
                pc.cast(chunk.slice(low, middle - low), target)
                low = middle
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                high = middle
        try:
            pc.cast(chunk.slice(low, 1), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return offset + low, str(chunk[low].as_py())
        offset += len(chunk)
    return None


def _normalise_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Decode dictionaries, trim text (blank -> null), store numbers as int64/float64, re-infer numeric text."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pat

    if pat.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = logical_type(column.type)
    if kind == "integer":
        return column.cast(pa.int64())
    if kind == "float":
        return column.cast(pa.float64())
    if kind == "timestamp":
        return column.cast(pa.timestamp("us", tz=getattr(column.type, "tz", None)))
    if kind != "string":
        return column
    trimmed = pc.utf8_trim_whitespace(column.cast(pa.string()))
    trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    # Text columns that are entirely numbers (e.g. a Parquet written from pandas with " " for missing) become
    # numbers, so the same content gets the same types whatever the file format.
    if trimmed.null_count < len(trimmed):
        for numeric in (pa.int64(), pa.float64()):
            try:
                return pc.cast(trimmed, numeric)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
    return trimmed


def _require_utf8(column: pa.ChunkedArray, name: str, source: str) -> None:
    """Refuse a binary column (what the CSV reader makes of text that is not UTF-8) that does not decode."""
    import pyarrow.types as pat

    if not (pat.is_binary(column.type) or pat.is_large_binary(column.type)):
        return
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{source}: column {name!r}, row {row} (0-based data row): {value[:20]!r} is not UTF-8 text "
                f"({error.reason} at byte {error.start}); save the file as UTF-8"
            ) from error


def normalise_table(table: pa.Table, source: str, column_types: dict[str, str] | None = None) -> pa.Table:
    """Normalise column names and types so that the same content always yields the same table.

    Args:
        table: Table as read.
        source: Printable name of the source, for error messages.
        column_types: Optional overrides, column name -> logical type (``integer``, ``float``, ``string``,
            ``boolean``, ``timestamp``); applied after inference.

    Returns:
        The normalised table.

    Raises:
        DataError: duplicate or blank column names, nested columns (lists, structs, maps), text that is not UTF-8,
            an all-null column, or a value that cannot be cast to an override type (the message names the column,
            the row and the value).
        ParameterError: an override names a column that does not exist or an unknown type.
    """
    import pyarrow as pa
    import pyarrow.types as pat

    names = [str(name).strip() for name in table.column_names]
    blank = [index for index, name in enumerate(names) if not name]
    if blank:
        raise DataError(f"{source}: column #{blank[0] + 1} has no name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"{source}: duplicate column names: {', '.join(duplicates)}")
    nested = [
        f"{name!r} ({column.type})"
        for name, column in zip(names, table.columns, strict=True)
        if pat.is_nested(column.type) or pat.is_union(column.type)
    ]
    if nested:
        raise DataError(
            f"{source}: column(s) {', '.join(nested)} hold nested values (lists, structs or maps); mlkeel takes flat "
            "columns: flatten them into columns of numbers or text, or drop them, before ingest"
        )
    for name, column in zip(names, table.columns, strict=True):
        _require_utf8(column, name, source)
    columns = {name: _normalise_column(column) for name, column in zip(names, table.columns, strict=True)}

    for name, type_name in (column_types or {}).items():
        if name not in columns:
            raise ParameterError(
                f"column_types names column {name!r}, which {source} does not have; columns: {', '.join(names)}"
            )
        if type_name not in SUPPORTED_TYPES:
            raise ParameterError(
                f"column_types[{name!r}]={type_name!r}: unknown type; expected one of {', '.join(SUPPORTED_TYPES)}"
            )
        target = arrow_type_for(type_name)
        column = columns[name]
        if type_name in ("integer", "float", "boolean", "timestamp") and logical_type(column.type) != type_name:
            failure = first_failed_cast(column, target)
            if failure is not None:
                row, value = failure
                raise DataError(
                    f"{source}: column {name!r}, row {row} (0-based data row): cannot parse {value!r} as {type_name}"
                )
        columns[name] = column.cast(target)

    all_null = [name for name, column in columns.items() if column.null_count == len(column)]
    if all_null:
        raise DataError(
            f"{source}: column(s) {', '.join(repr(name) for name in all_null)} have no value in any of the "
            f"{table.num_rows} rows; drop them or fix the export"
        )
    return pa.table(columns)


def fingerprint_table(table: pa.Table) -> str:
    """Content fingerprint of a normalised table: column names and types plus the multiset of rows.

    Row order does not change it (rows are hashed one by one and the hashes sorted); the file format does not
    either, because both readers end in ``normalise_table``.

    Args:
        table: A table returned by ``normalise_table``.

    Returns:
        ``sha256:`` followed by 64 hex digits.
    """
    import numpy as np
    import pandas as pd

    header = json.dumps([[name, logical_type(table.schema.field(name).type)] for name in table.column_names])
    row_hashes = pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy(dtype=np.uint64)
    digest = hashlib.sha256(header.encode("utf-8"))
    digest.update(np.sort(row_hashes).tobytes())
    return f"sha256:{digest.hexdigest()}"


def ingest(
    source_uri: str,
    output_path: str,
    file_format: str = "auto",
    column_types: dict[str, str] | None = None,
    delimiter: str = "auto",
) -> IngestResult:
    """Read ``source_uri``, normalise it, fingerprint it and write it as Parquet to ``output_path``.

    Args:
        source_uri: CSV or Parquet file: a local path or a pyarrow-filesystem URI (``s3://``, ``gs://``, ...).
        output_path: Where to write the normalised Parquet file (atomically).
        file_format: ``auto`` (by suffix), ``csv`` or ``parquet``.
        column_types: Optional type overrides, column -> ``integer|float|string|boolean|timestamp``.
        delimiter: CSV delimiter: ``auto`` (detected), one character, or ``comma|semicolon|tab|pipe``.

    Returns:
        An ``IngestResult`` with the fingerprint and the column types.

    Raises:
        DataError: unreadable, empty or unusable input (see ``read_source`` and ``normalise_table``).
        ParameterError: bad ``file_format``, ``column_types`` or ``delimiter``.
    """
    source = display_uri(source_uri)
    raw, resolved_format, used_delimiter = read_source(source_uri, file_format, delimiter=delimiter)
    table = normalise_table(raw, source, column_types)
    write_parquet_atomic(table, output_path)
    return IngestResult(
        source=source,
        source_format=resolved_format,
        num_rows=table.num_rows,
        column_types={name: logical_type(table.schema.field(name).type) for name in table.column_names},
        fingerprint=fingerprint_table(table),
        delimiter=used_delimiter,
    )
