"""Task: the floor of validation (this venv): a bare pyarrow read, then a null count, min, max and mean pass."""

import json
import sys

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def work() -> dict:
    table = pq.read_table(arguments["path"])
    stats = {}
    for name in table.column_names:
        column = table[name]
        entry = {"nulls": column.null_count}
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            bounds = pc.min_max(column)
            entry.update(min=bounds["min"].as_py(), max=bounds["max"].as_py(), mean=pc.mean(column).as_py())
        stats[name] = entry
    return {"rows": table.num_rows, "columns": len(stats)}


result, seconds, cold = timed_twice(work)
emit(seconds, cold, **result)
