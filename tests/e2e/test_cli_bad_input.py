"""`mlkeel run training` on bad input: one clear line, a non-zero exit, nothing registered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlkeel.cli", "run", "training", "--local", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, ["--target", "y"], "data.csv: file not found"),
        ("", ["--target", "y"], "data.csv: file is empty"),
        ("a,b,y\n", ["--target", "y"], "data.csv: has a header (3 columns) but no data rows"),
        ("a,b\n1,2\n3,4\n", ["--target", "y"], "data.csv: target column 'y' not found; columns: a, b"),
        ("a,y\n1,yes\n2,yes\n", ["--target", "y", "--positive-label", "yes"], "has a single value 'yes' in all 2"),
        ("a,y\n1,yes\n2,no\n", ["--target", "y", "--task", "regression"], "task=regression but target column 'y'"),
        (
            "a,b,y\n1,2,0\n3,4,1\n",
            ["--target", "y", "--sensitive-column", "a", "--sensitive-column", "sex", "--slice-column", "region"],
            "data.csv: sensitive or slice column(s) not found: sex, region; columns: a, b, y",
        ),
        ("a,b,y\n1,,0\n2,,1\n", ["--target", "y"], "column(s) 'b' have no value in any of the 2 rows"),
        (
            "a,y\n1.5,0\nx,1\n",
            ["--target", "y", "--column-types", '{"a": "float"}'],
            "column 'a', row 1 (0-based data row): cannot parse 'x' as float",
        ),
        (  # kfp itself refused a wrong-typed parameter with an InconsistentTypeException traceback
            "a,y\n1,0\n2,1\n",
            ["--target", "y", "--param", 'max_invalid_fraction="lots"'],
            "pipeline 'training' parameter 'max_invalid_fraction' takes a number, got 'lots'",
        ),
    ],
)
def test_bad_input_fails_fast_with_the_file_and_column_named(
    tmp_path: Path, content: str | None, extra: list[str], message: str
) -> None:
    data = tmp_path / "data.csv"
    if content is not None:
        data.write_text(content)
    completed = run_cli("--data", str(data), "--workdir", str(tmp_path / "work"), *extra)
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: "), completed.stderr
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "work" / "mlflow.db").exists(), "a failed preflight must not touch the registry"


def test_data_without_target_is_a_usage_error(tmp_path: Path) -> None:
    completed = run_cli("--data", "x.csv", "--workdir", str(tmp_path))
    assert completed.returncode == 1
    assert "--target is required with --data" in completed.stderr
