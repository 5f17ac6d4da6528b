"""Following a kfp.local run (mlkeel.progress): real pipelines under kfp.local's SubprocessRunner, nested ones too."""

import io
import sys
from pathlib import Path

import pytest
from kfp import dsl, local

from mlkeel.progress import LOG_FILE, error_line, follow_run, headline


@dsl.component
def count_rows(rows: int) -> int:
    print(f"counting {rows} rows")
    return rows


@dsl.component
def check_rows(rows: int):
    import time

    if rows > 2:
        time.sleep(1.5)  # long enough for the live line to show the task running
        raise ValueError(f"row {rows}: too many rows for this check")


@dsl.pipeline(name="inner")
def inner(rows: int):
    check_rows(rows=rows)


@dsl.pipeline(name="outer")
def outer(rows: int):
    counted = count_rows(rows=rows)
    inner(rows=counted.output)


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), raise_on_error=True)
    return tmp_path


def test_a_run_shows_a_line_per_task_and_its_logs_go_to_the_run_folder(pipeline_root: Path) -> None:
    out = io.StringIO()
    stdout = sys.stdout
    with follow_run(out, live=False) as follower:
        outer(rows=2)
    assert sys.stdout is stdout
    (log,) = pipeline_root.glob(f"outer-*/{LOG_FILE}")
    assert follower.log_path == log and follower.first_failure is None
    lines = out.getvalue().splitlines()
    assert lines[0] == f"one line per task; kfp.local's whole log: {log}"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["count-rows", "started"],
        ["count-rows", "done"],
        ["check-rows", "started"],
        ["check-rows", "done"],
    ]
    assert "\x1b[" not in out.getvalue()
    text = log.read_text()
    assert "counting 2 rows" in text and "Executing task 'check-rows'" in text and "\x1b[" not in text


def test_a_failed_nested_task_is_named_with_its_error_line_not_the_nesting(pipeline_root: Path) -> None:
    out = io.StringIO()
    with follow_run(out, live=True) as follower, pytest.raises(RuntimeError, match="Inner task failed"):
        outer(rows=3)
    failure = follower.first_failure
    assert failure is not None and failure.log is not None
    assert str(failure) == (
        f"task 'check-rows' failed first: ValueError: row 3: too many rows for this check; its log: {failure.log}"
    )
    shown = out.getvalue()
    # A terminal: a live line of the running task (redrawn each second), one coloured line per finished task.
    assert "\r\x1b[K  running: check-rows 1 s" in shown
    assert "count-rows    \x1b[32mdone  \x1b[0m" in shown
    assert "check-rows    \x1b[31mFAILED\x1b[0m" in shown and "ValueError: row 3: too many rows" in shown
    assert f"its whole output: {failure.log}" in shown
    assert "Traceback (most recent call last):" in failure.log.read_text()


def test_verbose_streams_kfp_local_output_as_it_prints_it(pipeline_root: Path) -> None:
    out = io.StringIO()
    with follow_run(out, verbose=True) as follower:
        count_rows(rows=5)
    assert "Executing task \x1b[96m'count-rows'\x1b[0m" in out.getvalue()  # as kfp.local prints it
    assert "counting 5 rows" in out.getvalue()
    assert follower.log_path is not None and "counting 5 rows" in follower.log_path.read_text()


def test_error_line_is_the_exception_after_the_traceback_or_else_a_logged_error() -> None:
    traceback = [
        "    Traceback (most recent call last):",
        '      File "x.py", line 1, in <module>',
        "        raise DataError(msg)",
        "    mlkeel.errors.DataError: data.csv: column 'age' not found",
        "",
        "12:00:00.000 - ERROR - Task 'ingest' finished with status FAILURE",
    ]
    assert error_line(traceback) == "mlkeel.errors.DataError: data.csv: column 'age' not found"
    logged = ["    [KFP Executor 2026-12-03 11:00:00,000 ERROR]: registry unreachable", "12:00:00.000 - ERROR - Task"]
    assert error_line(logged) == "[KFP Executor 2026-12-03 11:00:00,000 ERROR]: registry unreachable"
    assert error_line(["all fine"]) == ""


def test_headlines_say_the_result_that_matters() -> None:
    class Artifact:
        def __init__(self, **metadata: object) -> None:
            self.metadata = metadata

    assert headline("validate", {"rows_valid": 7041, "rows_quarantined": 2}) == "7041 valid, 2 quarantined"
    assert headline("evaluate", {"metrics": Artifact(roc_auc=0.84691, f1=0.5)}) == "roc_auc 0.8469, f1 0.5000"
    assert headline("gate-2", {"blessing": Artifact(blessed=False, reason="roc_auc below 0.7")}) == (
        "NOT blessed: roc_auc below 0.7"
    )
    assert headline("drift", {"result": Artifact(is_drift=True, drifted_features=["month"])}) == "DRIFT in month"
    assert headline("unknown-stage", {"x": 1}) == "" and headline("validate", {}) == ""
