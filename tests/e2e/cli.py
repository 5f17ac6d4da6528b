"""Run ``mlkeel`` as a user types it (a subprocess) and read its summary lines."""

from __future__ import annotations

import subprocess
import sys


def run_mlkeel(*args: str, timeout: float = 900) -> str:
    """Run ``python -m mlkeel.cli ARGS``; fail the test with the output's tail unless it exits 0.

    Args:
        args: The command line after ``mlkeel``.
        timeout: Seconds before the run is stopped.

    Returns:
        stdout then stderr.
    """
    completed = subprocess.run(
        [sys.executable, "-m", "mlkeel.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr
