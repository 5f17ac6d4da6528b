"""Pieces shared by the ``mlkeel`` command and every stage's ``python -m`` entry point."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlkeel.errors import MlkeelError

F = TypeVar("F", bound=Callable[..., Any])

# Exit code for a user error (bad input, failed validation, unblessed model); click uses 2 for bad usage.
USER_ERROR_EXIT_CODE = 1


class JsonObject(click.ParamType):
    """A click parameter holding a JSON object, e.g. ``--column-types '{"tenure": "float"}'``."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        """Parse ``value`` as a JSON object."""
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            self.fail(f"not valid JSON ({error.msg} at character {error.pos}): {value!r}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail(f"expected a JSON object like '{{\"key\": value}}', got {value!r}", param, ctx)
        return parsed


JSON_OBJECT = JsonObject()


def reports_user_errors(function: F) -> F:
    """Turn an ``MlkeelError`` into one ``error: ...`` line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except MlkeelError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(USER_ERROR_EXIT_CODE)

    return wrapper  # type: ignore[return-value]


def echo_json(document: Any) -> None:
    """Print ``document`` as indented JSON on stdout (what the stage entry points print as their result)."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def task_option(command: F) -> F:
    """Add ``--task binary|multiclass|regression`` (default: inferred from the target) to a click command.

    Shared by the split and train CLIs and ``mlkeel run training``.
    """
    from mlkeel.task import TASKS

    return click.option(
        "--task",
        type=click.Choice(["", *TASKS]),
        default="",
        help="The target's task (default: inferred: 2 values binary, <= 20 whole numbers or text values "
        "multiclass, other numbers regression; the summary says which and why).",
    )(command)


def model_choice_options(command: F) -> F:
    """Add train's model choices to a click command: ``--threshold-policy``, ``--class-weight``, ``--feature-types``.

    Shared by the train stage's CLI and ``mlkeel run training``, so both say the same.
    """
    from mlkeel.threshold import DEFAULT_THRESHOLD_POLICY, THRESHOLD_POLICY_HELP

    options = [
        click.option(
            "--threshold-policy", default=DEFAULT_THRESHOLD_POLICY, show_default=True, help=THRESHOLD_POLICY_HELP
        ),
        click.option(
            "--class-weight",
            type=click.Choice(["", "balanced"]),
            default="",
            help="balanced: reweight the rarer class.",
        ),
        click.option(
            "--feature-types",
            type=JSON_OBJECT,
            default=None,
            help="Feature typing overrides, column -> numeric|boolean|categorical|text|timestamp|ignore, e.g. "
            '\'{"session": "ignore", "comment": "text"}\' (others are typed from the data; the summary says how).',
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
