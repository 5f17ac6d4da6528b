"""The peer tools the benchmarks compare mlkeel with, each in its own virtual environment under ``.peers/``.

    python benchmarks/peers.py install [pandera great_expectations evidently]   create the venvs (pinned)
    python benchmarks/peers.py list                                              which venvs are ready

Peers are never mlkeel dependencies: their pins conflict with ours or add hundreds of MB. A benchmark runs a
peer's code with ``run_peer``: a subprocess in the peer's venv that prints one JSON line of figures. A peer
whose venv is missing is skipped with that reason (CI never installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(os.environ.get("MLKEEL_PEERS_DIR", ROOT / ".peers"))
# Exact pins: the figures are only comparable with the versions named in the results file.
PEERS: dict[str, list[str]] = {
    "pandera": ["pandera==0.35.0", "pandas==2.3.3", "pyarrow==25.0.1", "numpy==1.26.4"],
    "great_expectations": ["great-expectations==1.24.1", "pyarrow==25.0.1"],
    "evidently": ["evidently==0.7.23", "pandas==2.3.3", "pyarrow==25.0.1"],  # evidently 0.7 needs pandas<3,
}


def python_of(peer: str) -> Path:
    """The interpreter of ``peer``'s venv (it may not exist)."""
    return PEERS_DIR / peer / "bin" / "python"


def missing_reason(peer: str) -> str:
    """Why ``peer`` cannot run here, or "" when its venv is ready."""
    if not (PEERS_DIR / peer / ".ready").exists():
        return f"no venv for {peer} at {PEERS_DIR / peer} (python benchmarks/peers.py install {peer})"
    return ""


def install(peer: str) -> None:
    """Create ``peer``'s venv with its pinned packages (idempotent: a ready venv is kept)."""
    if not missing_reason(peer):
        return
    folder = PEERS_DIR / peer
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    subprocess.run([str(python_of(peer)), "-m", "pip", "install", "--quiet", *PEERS[peer]], check=True)
    frozen = subprocess.run([str(python_of(peer)), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    wanted = {"pandas", "numpy", "pyarrow", *(pin.split("==")[0] for pin in PEERS[peer])}
    installed = [line for line in frozen.stdout.split() if line.split("==")[0].lower() in wanted]
    (folder / ".ready").write_text(" ".join(installed) + "\n")


def versions(peer: str) -> str:
    """The pins of ``peer``'s venv, as installed."""
    ready = PEERS_DIR / peer / ".ready"
    return ready.read_text().strip() if ready.exists() else ""


def run_peer(peer: str, script: Path, arguments: list[str], timeout: float = 3600) -> dict:
    """Run ``script`` in ``peer``'s venv; return the JSON object it printed last, plus the wall seconds."""
    started = time.perf_counter()
    completed = subprocess.run(
        [str(python_of(peer)), str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{peer} {script.name} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = time.perf_counter() - started
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("install", "list"))
    parser.add_argument("peers", nargs="*", default=list(PEERS))
    options = parser.parse_args()
    for peer in options.peers:
        if options.action == "install":
            install(peer)
        print(f"{peer:<20}{missing_reason(peer) or 'ready: ' + versions(peer)}")


if __name__ == "__main__":
    main()
