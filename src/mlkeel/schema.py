"""The dataset schema: what validate infers from reference data; what train, drift and serving check against.

A schema lists every column with its logical type (``integer``, ``float``, ``string``, ``boolean``,
``timestamp``), whether it may be null, the numeric range seen and, for low-cardinality text columns, the
closed set of categories. It is saved as key-sorted JSON (stable bytes for the same content) and identified by
``schema_hash()``, which lineage records on every model trained against it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlkeel.components.ingest.logic import SUPPORTED_TYPES, arrow_type_for, logical_type
from mlkeel.constants import SCHEMA_FORMAT_VERSION
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.storage import display_uri, read_json, require_readable_file, write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import pyarrow as pa

NUMERIC_TYPES = ("integer", "float")
DEFAULT_MAX_CATEGORIES = 50
COLUMN_FIELDS = ("name", "type", "nullable", "minimum", "maximum", "categories")
SCHEMA_FIELDS = ("format_version", "columns", "key_columns", "target_column")


def _require_number(value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{what}: expected a number or null, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{what}: expected a finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class ColumnSchema:
    """One column of a dataset schema.

    Attributes:
        name: Column name.
        type: Logical type: ``integer``, ``float``, ``string``, ``boolean`` or ``timestamp``.
        nullable: True when the column may hold nulls (NaN counts as null).
        minimum: Smallest allowed value (numeric columns only), or None for no lower bound.
        maximum: Largest allowed value (numeric columns only), or None for no upper bound.
        categories: The closed set of allowed values (string columns only), sorted; None means free text.
    """

    name: str
    type: str
    nullable: bool
    minimum: float | int | None = None
    maximum: float | int | None = None
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(f"field 'name': expected a non-empty string, got {self.name!r}")
        if self.type not in SUPPORTED_TYPES:
            raise ParameterError(f"field 'type': {self.type!r} is not one of {', '.join(SUPPORTED_TYPES)}")
        if not isinstance(self.nullable, bool):
            raise ParameterError(f"field 'nullable': expected true or false, got {self.nullable!r}")
        bounds = {}
        for bound in ("minimum", "maximum"):
            value = getattr(self, bound)
            if value is None:
                continue
            if self.type not in NUMERIC_TYPES:
                raise ParameterError(f"field {bound!r}: only integer and float columns have one, not {self.type}")
            value = _require_number(value, f"field {bound!r}")
            if self.type == "float":
                value = float(value)
            elif value != int(value):
                raise ParameterError(f"field {bound!r}: {value!r} is not a whole number (integer column)")
            else:
                value = int(value)
            object.__setattr__(self, bound, value)
            bounds[bound] = value
        if len(bounds) == 2 and bounds["minimum"] > bounds["maximum"]:
            raise ParameterError(f"field 'minimum': {bounds['minimum']!r} is above maximum {bounds['maximum']!r}")
        if self.categories is not None:
            if self.type != "string":
                raise ParameterError(f"field 'categories': only string columns have categories, not {self.type}")
            if isinstance(self.categories, str) or not all(isinstance(value, str) for value in self.categories):
                raise ParameterError(f"field 'categories': expected a list of strings, got {self.categories!r}")
            categories = tuple(sorted(set(self.categories)))
            if len(categories) != len(self.categories):
                raise ParameterError("field 'categories': lists a value more than once")
            object.__setattr__(self, "categories", categories)

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type that stores this column (int64, float64, string, bool, timestamp[us])."""
        return arrow_type_for(self.type)

    def to_dict(self) -> dict[str, Any]:
        """Return the column as a JSON-ready dict (every field present, None as null)."""
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "categories": None if self.categories is None else list(self.categories),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ColumnSchema:
        """Build a column from ``to_dict()`` output.

        Args:
            document: A mapping with ``name``, ``type``, ``nullable`` and optionally ``minimum``, ``maximum``,
                ``categories``.

        Returns:
            The column.

        Raises:
            ParameterError: a missing, unknown or invalid field (the message names it).
        """
        if not isinstance(document, dict):
            raise ParameterError(f"expected an object, got {document!r}")
        unknown = sorted(set(document) - set(COLUMN_FIELDS))
        if unknown:
            raise ParameterError(f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(COLUMN_FIELDS)}")
        missing = [name for name in ("name", "type", "nullable") if name not in document]
        if missing:
            raise ParameterError(f"missing field(s) {', '.join(map(repr, missing))}")
        categories = document.get("categories")
        if categories is not None and not isinstance(categories, list):
            raise ParameterError(f"field 'categories': expected a list of strings or null, got {categories!r}")
        return cls(
            name=document["name"],
            type=document["type"],
            nullable=document["nullable"],
            minimum=document.get("minimum"),
            maximum=document.get("maximum"),
            categories=None if categories is None else tuple(categories),
        )


@dataclass(frozen=True)
class DatasetSchema:
    """The schema of a dataset: its columns in order, its key columns and its target column.

    Attributes:
        columns: The columns, in dataset order.
        key_columns: Columns whose values together identify a row (may be empty).
        target_column: The label column, or None.
        format_version: Version of the JSON layout (``SCHEMA_FORMAT_VERSION``).
    """

    columns: tuple[ColumnSchema, ...]
    key_columns: tuple[str, ...] = field(default_factory=tuple)
    target_column: str | None = None
    format_version: int = SCHEMA_FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if isinstance(self.key_columns, str):
            raise ParameterError(f"field 'key_columns': expected a list of column names, got {self.key_columns!r}")
        object.__setattr__(self, "key_columns", tuple(self.key_columns))
        if self.format_version != SCHEMA_FORMAT_VERSION:
            raise ParameterError(
                f"field 'format_version': {self.format_version!r} is not supported; this mlkeel reads "
                f"version {SCHEMA_FORMAT_VERSION}"
            )
        if not self.columns:
            raise ParameterError("field 'columns': a schema needs at least one column")
        if not all(isinstance(column, ColumnSchema) for column in self.columns):
            raise ParameterError("field 'columns': expected ColumnSchema objects")
        names = [column.name for column in self.columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ParameterError(f"field 'columns': duplicate column name(s) {', '.join(map(repr, duplicates))}")
        unknown_keys = [key for key in self.key_columns if key not in names]
        if unknown_keys:
            raise ParameterError(
                f"field 'key_columns': {', '.join(map(repr, unknown_keys))} not among the columns {names}"
            )
        if len(set(self.key_columns)) != len(self.key_columns):
            raise ParameterError(f"field 'key_columns': lists a column more than once: {list(self.key_columns)}")
        if self.target_column is not None:
            if self.target_column not in names:
                raise ParameterError(f"field 'target_column': {self.target_column!r} not among the columns {names}")
            if self.target_column in self.key_columns:
                raise ParameterError(f"field 'target_column': {self.target_column!r} is also a key column")

    @property
    def column_names(self) -> list[str]:
        """The column names, in order."""
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnSchema:
        """Return the column called ``name``.

        Args:
            name: Column name.

        Returns:
            Its ``ColumnSchema``.

        Raises:
            SchemaMismatchError: the schema has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaMismatchError(f"the schema has no column {name!r}; columns: {', '.join(self.column_names)}")

    def feature_columns(self) -> list[ColumnSchema]:
        """Return the columns a model reads: every column except the key columns and the target."""
        excluded = {*self.key_columns, self.target_column}
        return [column for column in self.columns if column.name not in excluded]

    def arrow_schema(self) -> pa.Schema:
        """Return the Arrow schema of a table that conforms (the validate stage's ``valid`` output)."""
        import pyarrow as pa

        return pa.schema([pa.field(column.name, column.arrow_type, column.nullable) for column in self.columns])

    def to_dict(self) -> dict[str, Any]:
        """Return the schema as a JSON-ready dict."""
        return {
            "format_version": self.format_version,
            "columns": [column.to_dict() for column in self.columns],
            "key_columns": list(self.key_columns),
            "target_column": self.target_column,
        }

    @classmethod
    def from_dict(cls, document: Any, source: str = "schema") -> DatasetSchema:
        """Build a schema from ``to_dict()`` output, checking every field.

        Args:
            document: The parsed JSON document.
            source: Where it came from (a file name), for error messages.

        Returns:
            The schema.

        Raises:
            DataError: a missing, unknown or invalid field; the message names ``source`` and the field, e.g.
                ``schema.json: columns[3] ('tenure'): field 'type': 'double' is not one of integer, ...``.
        """
        if not isinstance(document, dict):
            raise DataError(f"{source}: expected a JSON object with {', '.join(SCHEMA_FIELDS)}")
        unknown = sorted(set(document) - set(SCHEMA_FIELDS))
        if unknown:
            raise DataError(
                f"{source}: unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(SCHEMA_FIELDS)}"
            )
        missing = [name for name in ("format_version", "columns") if name not in document]
        if missing:
            raise DataError(f"{source}: missing field(s) {', '.join(map(repr, missing))}")
        raw_columns = document["columns"]
        if not isinstance(raw_columns, list):
            raise DataError(f"{source}: field 'columns': expected a list of column objects, got {raw_columns!r}")
        columns = []
        for index, raw in enumerate(raw_columns):
            label = f"columns[{index}]"
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                label += f" ({raw['name']!r})"
            try:
                columns.append(ColumnSchema.from_dict(raw))
            except ParameterError as error:
                raise DataError(f"{source}: {label}: {error}") from error
        key_columns = document.get("key_columns") or []
        if not isinstance(key_columns, list) or not all(isinstance(key, str) for key in key_columns):
            raise DataError(f"{source}: field 'key_columns': expected a list of column names, got {key_columns!r}")
        target_column = document.get("target_column")
        if target_column is not None and not isinstance(target_column, str):
            raise DataError(f"{source}: field 'target_column': expected a column name or null, got {target_column!r}")
        format_version = document["format_version"]
        if isinstance(format_version, bool) or not isinstance(format_version, int):
            raise DataError(f"{source}: field 'format_version': expected an integer, got {format_version!r}")
        try:
            return cls(
                columns=tuple(columns),
                key_columns=tuple(key_columns),
                target_column=target_column,
                format_version=format_version,
            )
        except ParameterError as error:
            raise DataError(f"{source}: {error}") from error

    def to_json(self) -> str:
        """Return the schema as indented, key-sorted JSON: the same bytes ``save`` writes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the schema as JSON to the local ``path``, atomically.

        Args:
            path: Destination file (a KFP artifact's ``.path``).
        """
        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DatasetSchema:
        """Read a schema JSON file (a local path or a pyarrow-filesystem URI).

        Args:
            path: The file.

        Returns:
            The schema.

        Raises:
            DataError: the file is missing or not JSON, or a field is missing or invalid; the message names
                the file and the field.
        """
        location = os.fspath(path)
        shown = display_uri(location)
        if "://" in location:
            filesystem, inner_path, _ = require_readable_file(location)
            with filesystem.open_input_stream(inner_path) as stream:
                text = stream.read().decode("utf-8", errors="replace")
            try:
                document = json.loads(text)
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{shown}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
                ) from error
        else:
            document = read_json(location)
        return cls.from_dict(document, source=shown)

    def schema_hash(self) -> str:
        """Identify the content: ``sha256:<hex>`` over the canonical JSON of columns, keys and target.

        The format version and the JSON indentation do not enter it, so the hash changes only when what the
        schema allows changes.

        Returns:
            ``sha256:`` followed by 64 hex digits.
        """
        canonical = json.dumps(
            {
                "columns": [column.to_dict() for column in self.columns],
                "key_columns": list(self.key_columns),
                "target_column": self.target_column,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return f"sha256:{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"

    def with_roles(self, key_columns: Sequence[str] | None = None, target_column: str | None = None) -> DatasetSchema:
        """Return a copy with other key columns and/or target column (None keeps the current one).

        Args:
            key_columns: New key columns, or None to keep them.
            target_column: New target column, or None to keep it.

        Returns:
            The new schema.

        Raises:
            ParameterError: a named column is not in the schema.
        """
        return dataclasses.replace(
            self,
            key_columns=self.key_columns if key_columns is None else tuple(key_columns),
            target_column=self.target_column if target_column is None else target_column,
        )


def _require_columns(table: pa.Table, names: Iterable[str], parameter: str) -> None:
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise ParameterError(
            f"{parameter} names column(s) {', '.join(map(repr, missing))}, which the table does not have; "
            f"columns: {', '.join(table.column_names)}"
        )


def _infer_column(name: str, column: pa.ChunkedArray, max_categories: int, is_key: bool) -> ColumnSchema:
    import pyarrow.compute as pc
    import pyarrow.types as pat

    if pat.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = logical_type(column.type)
    if kind == "null":  # no value at all in the reference: any value of any kind may come
        return ColumnSchema(name=name, type="string", nullable=True)
    nullable = column.null_count > 0
    if kind == "float" and not nullable:
        nullable = bool(pc.any(pc.is_nan(column.cast("float64"))).as_py())
    minimum = maximum = None
    if kind in NUMERIC_TYPES and column.null_count < len(column) and not is_key:
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        # NaN-only or infinite bounds are no bound.
        minimum = low if low is not None and math.isfinite(low) else None
        maximum = high if high is not None and math.isfinite(high) else None
    categories = None
    if kind == "string" and not is_key:
        distinct = pc.unique(column.cast("string")).drop_null()
        if 0 < len(distinct) <= max_categories:  # no value seen at all is no evidence of a closed domain
            categories = tuple(sorted(distinct.to_pylist()))
    return ColumnSchema(name, kind, nullable, minimum, maximum, categories)


def infer_schema(
    table: pa.Table,
    key_columns: Sequence[str] = (),
    target_column: str | None = None,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> DatasetSchema:
    """Infer a schema from reference data.

    Types come from the Arrow types (``mlkeel.components.ingest.logic.logical_type``); a column is nullable
    iff the reference holds a null (or NaN) in it; numeric columns get the reference's min and max as bounds;
    a string column with at most ``max_categories`` distinct values gets them as its closed category domain,
    a column with more is free text. Key columns get neither bounds nor a category domain (new rows bring new
    keys).

    Args:
        table: The reference data.
        key_columns: Columns whose values together identify a row.
        target_column: The label column, or None.
        max_categories: Largest number of distinct values that still makes a string column categorical.

    Returns:
        The schema, columns in table order.

    Raises:
        ParameterError: ``max_categories`` < 1, or a key/target column the table does not have.
    """
    if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 1:
        raise ParameterError(f"max_categories={max_categories!r}: expected an integer >= 1")
    keys = [key_columns] if isinstance(key_columns, str) else list(key_columns)
    _require_columns(table, keys, "key_columns")
    if target_column:
        _require_columns(table, [target_column], "target_column")
    columns = tuple(
        _infer_column(name, table[name], max_categories, is_key=name in keys) for name in table.column_names
    )
    return DatasetSchema(columns=columns, key_columns=tuple(keys), target_column=target_column or None)
