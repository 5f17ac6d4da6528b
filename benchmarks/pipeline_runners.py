"""Wall time of the local training pipeline: warm vs fresh interpreters vs Docker vs the same work in one process.

    python benchmarks/pipeline_runners.py --repeats 3 [--json out.json] [--no-docker]

Runs are interleaved (warm, subprocess, single process, docker, warm, ...) so that machine noise hits every
peer alike; it reports medians and ratios computed in this one run. Each pipeline run gets a fresh work
folder, so every run registers version 1 (the same work each time). The DockerRunner needs the stage images
(``mlkeel images build --offline``). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

# The CLI's defaults train on the bundled Telco data (target Churn, positive label Yes, key customerID).
MODEL_NAME = "bench"
# ingest, validate, split, train, evaluate, fairness, explain, gate, register, model card
TASKS = 10


def pipeline_run(runner: str) -> float:
    """``mlkeel run training --local --runner RUNNER`` as a user runs it, in a new process and a new work folder.

    Returns:
        The pipeline's wall time as the run's summary reports it (the process's own start-up, imports and
        store preparation come on top: the callers time the whole command).
    """
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix=f"mlkeel-bench-{runner}-") as workdir:
        command = [sys.executable, "-m", "mlkeel.cli", "run", "training", "--local", "--runner", runner]
        command += ["--workdir", workdir, "--model-name", MODEL_NAME]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")
    (line,) = [line for line in completed.stdout.splitlines() if line.strip().startswith("wall time")]
    return float(line.split(":")[1].split()[0])


def single_process_run() -> float:
    """The same stage functions called in one Python process: the floor the pipeline overhead is measured on."""
    with tempfile.TemporaryDirectory(prefix="mlkeel-bench-single-") as folder:
        return single_process_steps(Path(folder))


def single_process_steps(work: Path) -> float:
    """The training steps in ``work`` (model in ``work/model``, data splits beside it); returns their seconds."""
    from mlkeel.components.evaluate.logic import evaluate
    from mlkeel.components.explain.logic import explain
    from mlkeel.components.fairness.logic import fairness
    from mlkeel.components.gate.logic import gate
    from mlkeel.components.ingest.logic import ingest
    from mlkeel.components.model_card.logic import model_card
    from mlkeel.components.register.logic import register
    from mlkeel.components.split.logic import split
    from mlkeel.components.train.logic import train
    from mlkeel.components.validate.logic import validate
    from mlkeel.data import TELCO_CHURN_CSV
    from mlkeel.local import LocalStore

    store = LocalStore.create(work)
    store.ensure_experiment("bench")
    started = time.perf_counter()
    fingerprint = ingest(str(TELCO_CHURN_CSV), str(work / "data")).fingerprint
    validate(
        str(work / "data"),
        str(work / "valid"),
        str(work / "quarantine"),
        str(work / "schema"),
        str(work / "report"),
        key_columns=["customerID"],
        target_column="Churn",
        positive_label="Yes",
    )
    split(str(work / "valid"), str(work / "train"), str(work / "test"), "Churn", "Yes")
    trained = train(
        str(work / "train"),
        str(work / "model"),
        "Churn",
        "Yes",
        ["customerID"],
        tracking_uri=store.tracking_uri,
        experiment_name="bench",
        data_fingerprint=fingerprint,
        schema_path=str(work / "schema"),
    )
    evaluation = evaluate(
        str(work / "model"), str(work / "test"), "Churn", "Yes", store.tracking_uri, trained.mlflow_run_id
    )
    # The training pipeline's defaults for the bundled data (pipelines/training.py).
    fairness(
        str(work / "model"),
        str(work / "test"),
        "Churn",
        "Yes",
        str(work / "fairness"),
        sensitive_columns=["gender", "SeniorCitizen"],
        thresholds={"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.25},
        tracking_uri=store.tracking_uri,
        mlflow_run_id=trained.mlflow_run_id,
    )
    explain(
        str(work / "model"),
        str(work / "test"),
        "Churn",
        "Yes",
        str(work / "importance"),
        str(work / "importance.png"),
        str(work / "importance.html"),
        tracking_uri=store.tracking_uri,
        mlflow_run_id=trained.mlflow_run_id,
    )
    blessing = gate(
        str(work / "model"),
        str(work / "test"),
        evaluation.metrics,
        "bench",
        "Churn",
        "Yes",
        str(work / "blessing"),
        tracking_uri=store.tracking_uri,
        thresholds={"roc_auc": 0.7},
        fairness_path=str(work / "fairness"),
        slice_columns=["Contract"],
    )
    registered = register(
        trained.mlflow_model_uri, blessing, "bench", store.tracking_uri, trained.mlflow_run_id, fingerprint
    )
    model_card(
        "bench",
        registered.version,
        str(work / "card.html"),
        str(work / "card.md"),
        tracking_uri=store.tracking_uri,
        metrics=evaluation.metrics,
        schema_path=str(work / "schema"),
        blessing_path=str(work / "blessing"),
        fairness_path=str(work / "fairness"),
        importance_path=str(work / "importance"),
        importance_plot_path=str(work / "importance.png"),
        test_path=str(work / "test"),
        model_uri=str(work / "model"),
        slice_columns=["Contract"],
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-docker", action="store_true", help="skip the DockerRunner (no Docker engine)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()

    peers = {
        "warm": lambda: pipeline_run("warm"),
        "subprocess": lambda: pipeline_run("subprocess"),
        "single_process": single_process_run,
    }
    if not options.no_docker:
        peers["docker"] = lambda: pipeline_run("docker")
    times: dict[str, list[float]] = {name: [] for name in peers}
    for repeat in range(options.repeats):
        for name, run in peers.items():
            times[name].append(run())
            print(f"repeat {repeat + 1}/{options.repeats}: {name} {times[name][-1]:.1f} s", flush=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["single_process"]
    report = {
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "repeats": options.repeats,
        "seconds": times,
        "median_seconds": medians,
        "ratio_to_single_process": {name: value / floor for name, value in medians.items()},
        "per_task_overhead_seconds": {
            name: (value - floor) / TASKS for name, value in medians.items() if name != "single_process"
        },
    }
    if "docker" in medians:
        report["docker_over_subprocess"] = medians["docker"] / medians["subprocess"]
    print(f"\n{'peer':<16}{'median s':>10}{'x single':>10}{'overhead/task s':>17}")
    for name, value in medians.items():
        overhead = report["per_task_overhead_seconds"].get(name)
        print(f"{name:<16}{value:>10.1f}{value / floor:>10.2f}{'' if overhead is None else f'{overhead:>17.2f}'}")
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
