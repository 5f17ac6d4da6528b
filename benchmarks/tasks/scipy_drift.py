"""Task: the naive drift pass (this venv): pandas read, scipy ks_2samp per numeric column (nulls dropped),
chi2_contingency per categorical column (nulls a category), a column flagged when p < 0.05 (no correction)."""

import json
import sys
import time

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import chi2_contingency, ks_2samp  # noqa: E402

imported = time.perf_counter()


def work() -> dict:
    reference = pd.read_parquet(arguments["reference"])
    current = pd.read_parquet(arguments["current"])
    p_values = {}
    for name in reference.columns:
        if name in arguments.get("exclude", []):
            continue
        if pd.api.types.is_numeric_dtype(reference[name]):
            p_values[name] = float(ks_2samp(reference[name].dropna(), current[name].dropna()).pvalue)
        else:
            counts = pd.concat(
                [reference[name].fillna("(null)").value_counts(), current[name].fillna("(null)").value_counts()],
                axis=1,
            ).fillna(0)
            p_values[name] = float(chi2_contingency(np.asarray(counts).T)[1])
    return p_values


p_values, seconds, cold = timed_twice(work)
emit(
    seconds,
    cold,
    imported - started,
    flagged=sorted(name for name, p in p_values.items() if p < 0.05),
    p_values=p_values,
)
