"""Kubernetes resources, retries and caching for every task, set in one place.

Requests are sized for the bundled data plus headroom; override per task in your own pipeline with
``task.set_cpu_request(...)`` etc. Limits on memory only: CPU limits throttle, memory limits protect nodes.
"""

from dataclasses import dataclass

from kfp import dsl


@dataclass(frozen=True)
class TaskSettings:
    """How one stage's task runs.

    Attributes:
        cpu: CPU request.
        memory: Memory request; the limit is ``memory_limit``.
        memory_limit: Memory limit.
        retries: Retries on failure (I/O steps: object stores and the registry have transient failures).
        cache: Whether KFP may reuse a previous result: only where outputs are a pure function of inputs.
    """

    cpu: str
    memory: str
    memory_limit: str
    retries: int = 0
    cache: bool = False


# Short backoff: retries are for blips (network, registry restarts), not for bad input, which fails fast anyway.
RETRY_BACKOFF = "5s"
RETRY_BACKOFF_FACTOR = 2.0
RETRY_BACKOFF_MAX = "60s"

SETTINGS = {
    # External source may change under the same URI: never cached.
    "ingest": TaskSettings(cpu="500m", memory="1Gi", memory_limit="4Gi", retries=2),
    "validate": TaskSettings(cpu="500m", memory="1Gi", memory_limit="4Gi", cache=True),
    "split": TaskSettings(cpu="250m", memory="512Mi", memory_limit="2Gi", cache=True),
    # Side effects in MLflow (a run per training, registry reads/writes): never cached.
    "train": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", retries=1),
    "evaluate": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=1),
    # Pure functions of the model and the holdout, but they log on the model's MLflow run: not cached.
    "fairness": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=1),
    "explain": TaskSettings(cpu="1", memory="1Gi", memory_limit="2Gi", retries=1),
    "gate": TaskSettings(cpu="500m", memory="1Gi", memory_limit="2Gi", retries=2),
    "register": TaskSettings(cpu="250m", memory="512Mi", memory_limit="1Gi", retries=2),
    # Monitoring. The champion moves between runs: never cached.
    "champion": TaskSettings(cpu="250m", memory="1Gi", memory_limit="2Gi", retries=2),
    "drift": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", cache=True),
    "batch_predict": TaskSettings(cpu="1", memory="2Gi", memory_limit="4Gi", retries=1),
    "performance": TaskSettings(cpu="250m", memory="1Gi", memory_limit="2Gi", retries=1),
}


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
    task.set_cpu_request(settings.cpu)
    task.set_memory_request(settings.memory)
    task.set_memory_limit(settings.memory_limit)
    task.set_caching_options(settings.cache)
    if settings.retries:
        task.set_retry(
            num_retries=settings.retries,
            backoff_duration=RETRY_BACKOFF,
            backoff_factor=RETRY_BACKOFF_FACTOR,
            backoff_max_duration=RETRY_BACKOFF_MAX,
        )
    return task
