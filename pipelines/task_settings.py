"""Kubernetes resources, retries and caching for every task, set in one place.

Requests are sized for the bundled data plus headroom; override per task in your own pipeline with
``task.set_cpu_request(...)`` etc. Limits on memory only: CPU limits throttle, memory limits protect nodes.

Stages that talk to MLflow get ``MLFLOW_TRACKING_URI`` from the Kubernetes Secret ``MLFLOW_SECRET`` (kfp-kubernetes
``use_secret_as_env``): the compiled YAML names the Secret and its key, never the URI, which may carry
credentials. kfp.local ignores this platform config; there the URI comes from the process environment.
"""

import contextlib
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType, SimpleNamespace

from kfp import dsl, kubernetes
from kfp.dsl import pipeline_task

from mlkeel.constants import ENV_TRACKING_URI, MLFLOW_SECRET_NAME, MLFLOW_SECRET_URI_KEY


@dataclass(frozen=True)
class TaskSettings:
    """How one stage's task runs.

    Attributes:
        cpu: CPU request.
        memory: Memory request; the limit is ``memory_limit``.
        memory_limit: Memory limit.
        retries: Retries on failure (I/O steps: object stores and the registry have transient failures).
        cache: Whether KFP may reuse a previous result: only where outputs are a pure function of inputs.
        mlflow: Whether the task reads MLFLOW_TRACKING_URI from the ``MLFLOW_SECRET`` Secret.
    """

    cpu: str
    memory: str
    memory_limit: str
    retries: int = 0
    cache: bool = False
    mlflow: bool = False


# Short backoff: retries are for blips (network, registry restarts), not for bad input, which fails fast anyway.
RETRY_BACKOFF = "5s"
RETRY_BACKOFF_FACTOR = 2.0
RETRY_BACKOFF_MAX = "60s"

# The Secret (in the namespace the runs execute in) holding the tracking URI: manifests/pipelines/.
MLFLOW_SECRET = MLFLOW_SECRET_NAME

SETTINGS = {
    # External source may change under the same URI: never cached.
    "ingest": TaskSettings(cpu="500m", memory="1Gi", memory_limit="4Gi", retries=2),
    "validate": TaskSettings(cpu="500m", memory="1Gi", memory_limit="4Gi", cache=True),
    "split": TaskSettings(cpu="250m", memory="512Mi", memory_limit="2Gi", cache=True),
    # Side effects in MLflow (a run per training, registry reads/writes): never cached.
    "train": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", retries=1, mlflow=True),
    "evaluate": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=1, mlflow=True),
    # Pure functions of the model and the holdout, but they log on the model's MLflow run: not cached.
    "fairness": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=1, mlflow=True),
    "explain": TaskSettings(cpu="1", memory="1Gi", memory_limit="2Gi", retries=1, mlflow=True),
    "gate": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=2, mlflow=True),
    "register": TaskSettings(cpu="250m", memory="512Mi", memory_limit="1Gi", retries=2, mlflow=True),
    # Monitoring. The champion moves between runs: never cached.
    "champion": TaskSettings(cpu="250m", memory="1Gi", memory_limit="2Gi", retries=2, mlflow=True),
    "drift": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", cache=True),
    "batch_predict": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", retries=1, mlflow=True),
    "performance": TaskSettings(cpu="250m", memory="1Gi", memory_limit="2Gi", retries=1, mlflow=True),
    # Never fails on a push (a failed push is logged), so no retries; the push time changes: never cached.
    "push_metrics": TaskSettings(cpu="100m", memory="256Mi", memory_limit="512Mi"),
    # Serving (for pipelines that add the deploy component). No retries: a failed rollout was rolled back.
    "deploy": TaskSettings(cpu="100m", memory="256Mi", memory_limit="512Mi", mlflow=True),
    # Tuning (pipelines/tuning.py). The trials log child runs in MLflow: never cached. A trial fits one model like
    # train, so the same size; a retry re-fits (a failed fit is a scored-as-failed trial, not a task failure).
    "tune": TaskSettings(cpu="250m", memory="512Mi", memory_limit="1Gi", retries=2, mlflow=True),
    "tune_trial": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", retries=1, mlflow=True),
    "tune_select": TaskSettings(cpu="250m", memory="512Mi", memory_limit="1Gi", retries=2, mlflow=True),
    # Governance. Writes to the registry (card artifacts, a version tag): retried, never cached.
    "model_card": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=2, mlflow=True),
}

# Trial tasks of a search that run at once (dsl.ParallelFor(parallelism=...)): a compile-time number in KFP. Four
# 1-CPU trials fit a small node pool; raise it (and recompile) on a larger cluster.
TRIAL_PARALLELISM = 4


def configure(task: dsl.PipelineTask, stage: str) -> dsl.PipelineTask:
    """Apply ``SETTINGS[stage]`` and a display name to ``task``.

    Args:
        task: The task returned by calling a component inside a pipeline.
        stage: Stage name, a key of ``SETTINGS``.

    Returns:
        The same task, for chaining.
    """
    settings = SETTINGS[stage]
    task.set_display_name(stage)
    with _setters_name_themselves_cheaply():
        task.set_cpu_request(settings.cpu)
        task.set_memory_request(settings.memory)
        task.set_memory_limit(settings.memory_limit)
    task.set_caching_options(settings.cache)
    if settings.mlflow:
        kubernetes.use_secret_as_env(
            task, secret_name=MLFLOW_SECRET, secret_key_to_env={MLFLOW_SECRET_URI_KEY: ENV_TRACKING_URI}
        )
    if settings.retries:
        task.set_retry(
            num_retries=settings.retries,
            backoff_duration=RETRY_BACKOFF,
            backoff_factor=RETRY_BACKOFF_FACTOR,
            backoff_max_duration=RETRY_BACKOFF_MAX,
        )
    return task


def _frame_names(context: int = 1) -> list[inspect.FrameInfo]:
    """``inspect.stack()`` without the source lookups: each caller's file, line and function name."""
    frames = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        frames.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, None, None))
        frame = frame.f_back
    return frames


@contextlib.contextmanager
def _setters_name_themselves_cheaply() -> Iterator[None]:
    """Let kfp's resource setters find their own name without reading every frame's source file.

    kfp 2.17's ``set_cpu_request``/``set_memory_*`` call ``inspect.stack()[1][3]`` only to name themselves in an
    error message. ``inspect.stack`` looks up the module and source lines of every frame, scanning all of
    ``sys.modules`` (some 3,000 with MLflow and scikit-learn imported) for each frame it cannot place: 3 s of every
    ``mlkeel run`` and ``mlkeel compile`` went there (54 calls). For the setters' duration the ``inspect`` that
    kfp's module sees answers ``stack()`` with the frames' names only; the message, if one is raised, is the same.
    """
    real = pipeline_task.inspect
    pipeline_task.inspect = SimpleNamespace(stack=_frame_names)  # type: ignore[assignment]
    try:
        yield
    finally:
        pipeline_task.inspect = real
