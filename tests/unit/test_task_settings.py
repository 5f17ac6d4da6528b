"""pipelines/task_settings.py: every task's resources, and kfp's own error when a task cannot take them."""

import inspect

import pytest
from kfp import dsl
from kfp.dsl import pipeline_task

from mlkeel.pipelines.task_settings import SETTINGS, configure


@dsl.component
def _step(value: int) -> int:
    return value


@dsl.pipeline
def _inner(value: int) -> int:
    return _step(value=value).output


def test_configure_gives_the_resources_kfps_own_setters_give_and_restores_kfps_inspect() -> None:
    tasks = {}
    settings = SETTINGS["train"]

    @dsl.pipeline
    def outer(value: int = 1) -> None:
        tasks["configured"] = configure(_step(value=value), "train")
        by_hand = _step(value=value)
        by_hand.set_cpu_request(settings.cpu).set_memory_request(settings.memory)
        tasks["by_hand"] = by_hand.set_memory_limit(settings.memory_limit)

    configured = tasks["configured"].container_spec.resources
    assert configured == tasks["by_hand"].container_spec.resources
    assert (configured.cpu_request, configured.memory_request, configured.memory_limit) == ("1", "2Gi", "4Gi")
    assert pipeline_task.inspect is inspect


def test_a_pipeline_used_as_a_task_gets_kfps_error_naming_the_setter() -> None:
    with pytest.raises(ValueError, match=r"^set_cpu_request can only be used on single-step components"):

        @dsl.pipeline
        def outer(value: int = 1) -> None:
            configure(_inner(value=value), "train")

    assert pipeline_task.inspect is inspect
