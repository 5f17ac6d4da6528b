"""Follow a kfp.local run: one line per task as it starts and ends, kfp.local's full log in the run's folder.

kfp.local reports a run by writing to ``sys.stdout``: its logging handler is a ``StreamHandler(sys.stdout)``
made when each task starts, and each runner prints its task's output line by line (the subprocess runner from
the task's pipe, the Docker runner from the container's log stream), in the thread that runs the task. So
``follow_run`` does two things while a run is going:

* it wraps ``kfp.local.task_dispatcher.run_single_task_implementation``, the one function every task goes
  through (the orchestrators look it up on the module at each call), to learn when a task starts and ends, its
  status and its outputs, from which ``headline`` makes the one-line result that matters;
* it puts a ``_Router`` in place of ``sys.stdout``: every line goes to ``run.log`` in the run's folder
  (``<pipeline root>/<pipeline>-<timestamp>/``, known once the first task starts), colour codes removed, and
  to the task the writing thread is running, which keeps its last lines to find the error line when it fails.
  ``verbose`` also passes everything through to the terminal, as kfp.local prints it without mlkeel.

What the user sees (``out``): in a terminal, a live line with the running tasks and their seconds, replaced by
one line per finished task; elsewhere (a CI log, a pipe) a ``started`` and a finished line per task and no
colour codes.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import logging
import os
import re
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

LOG_FILE = "run.log"
TAIL_LINES = 200  # lines of output kept per task to find its error line
NAME_WIDTH = 13  # batch-predict
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A line a task logged as an error (its own logging, or KFP's executor's "[KFP Executor ... ERROR]").
ERROR_LINE = re.compile(r"\b(?:ERROR|CRITICAL)\b|^[A-Za-z_][\w.]*(?:Error|Exception)\b")
# kfp.local's own line about the task ("HH:MM:SS.mmm - ERROR - Task 'x' finished with status FAILURE").
KFP_LOCAL_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ - [A-Z]+ - ")
GREEN, RED, RESET = "\x1b[32m", "\x1b[31m", "\x1b[0m"


def task_label(component_name: str) -> str:
    """The task's name as kfp.local prints it: the component name without ``comp-``."""
    return component_name.removeprefix("comp-")


def stage_of(task: str) -> str:
    """The stage a task runs: its name without the ``-2`` suffix KFP gives a second task of one component."""
    return re.sub(r"-\d+$", "", task)


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.4f}"


def _meta(outputs: dict[str, Any], name: str) -> dict[str, Any]:
    artifact = outputs.get(name)
    return dict(getattr(artifact, "metadata", None) or {})


def _short(text: str, width: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _ingest(outputs: dict[str, Any]) -> str:
    return f"{_number(outputs['num_rows'])} rows, {str(outputs.get('fingerprint', ''))[:19]}"


def _validate(outputs: dict[str, Any]) -> str:
    return f"{_number(outputs['rows_valid'])} valid, {_number(outputs['rows_quarantined'])} quarantined"


def _split(outputs: dict[str, Any]) -> str:
    train, test = _meta(outputs, "train_data"), _meta(outputs, "test_data")
    return f"{_number(train['rows'])} train / {_number(test['rows'])} test rows ({train.get('mode', '')})"


def _train(outputs: dict[str, Any]) -> str:
    model = _meta(outputs, "model")
    text = str(model.get("estimator", "model"))
    if "validation_roc_auc" in model:
        text += f", validation roc_auc {float(model['validation_roc_auc']):.4f}"
    return text


def _evaluate(outputs: dict[str, Any]) -> str:
    metrics = _meta(outputs, "metrics")
    shown = [name for name in ("roc_auc", "f1", "accuracy") if name in metrics]
    return ", ".join(f"{name} {float(metrics[name]):.4f}" for name in shown)


def _fairness(outputs: dict[str, Any]) -> str:
    reason = str(_meta(outputs, "fairness").get("reason", ""))
    return "passed" if reason.startswith("Fairness passed") else _short(reason, 70)


def _explain(outputs: dict[str, Any]) -> str:
    top = _meta(outputs, "importance").get("top_features") or []
    return f"top features {', '.join(top[:3])}" if top else "not computed"


def _gate(outputs: dict[str, Any]) -> str:
    blessing = _meta(outputs, "blessing")
    blessed = bool(blessing.get("blessed", outputs.get("Output")))
    # The gate's reason starts "Not blessed: " itself: said once, in capitals, so it stands out in the column.
    reason = str(blessing.get("reason", "")).removeprefix("Not blessed: ")
    return "blessed" if blessed else f"NOT blessed: {_short(reason, 70)}"


def _register(outputs: dict[str, Any]) -> str:
    return f"version {outputs['version']}, alias {outputs.get('alias', '')}".rstrip(", ")


def _drift(outputs: dict[str, Any]) -> str:
    result = _meta(outputs, "result")
    if not result.get("is_drift"):
        return "no drift"
    return _short(f"DRIFT in {', '.join(result.get('drifted_features') or []) or 'the batch'}", 70)


def _performance(outputs: dict[str, Any]) -> str:
    reason = str(_meta(outputs, "result").get("reason", ""))
    return _short(reason.split(": ", 1)[-1], 90)  # without "<model> version <n>: "


def _champion(outputs: dict[str, Any]) -> str:
    return str(outputs.get("model_uri", ""))


def _batch_predict(outputs: dict[str, Any]) -> str:
    predictions = _meta(outputs, "predictions")
    rows = predictions.get("rows", predictions.get("num_rows"))
    return f"{_number(rows)} rows scored" if rows is not None else ""


# The one-line result that matters, per stage (task names as in the compiled pipelines).
HEADLINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": _ingest,
    "validate": _validate,
    "split": _split,
    "train": _train,
    "evaluate": _evaluate,
    "fairness": _fairness,
    "explain": _explain,
    "gate": _gate,
    "register": _register,
    "model-card": lambda outputs: "written",
    "drift": _drift,
    "performance": _performance,
    "champion": _champion,
    "batch-predict": _batch_predict,
}


def headline(task: str, outputs: dict[str, Any]) -> str:
    """The one-line result of a finished task, e.g. ``7043 valid, 0 quarantined`` or ``blessed``.

    Args:
        task: The task's name (``validate``, ``train-2``, ...).
        outputs: Its outputs as kfp.local returns them (parameters and artifacts with metadata).

    Returns:
        The line, or "" for a stage without one (or outputs without the expected fields).
    """
    make = HEADLINES.get(stage_of(task))
    try:
        return make(outputs) if make else ""
    except (KeyError, TypeError, ValueError):  # a summary must never fail a run
        return ""


def error_line(lines: list[str]) -> str:
    """The line of a task's output that says why it failed: its last traceback's exception, else an error line.

    Args:
        lines: The task's output, colour codes removed.

    Returns:
        The line (stripped), or "" when none looks like an error.
    """
    starts = [index for index, line in enumerate(lines) if line.strip() == "Traceback (most recent call last):"]
    if starts:
        indent = len(lines[starts[-1]]) - len(lines[starts[-1]].lstrip())
        for line in lines[starts[-1] + 1 :]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                return _short(line.strip(), 1000)  # "mlkeel.errors.DataError: ...": the exception, after its frames
    for line in reversed(lines):
        if ERROR_LINE.search(line) and not KFP_LOCAL_LINE.match(line):
            return _short(line.strip(), 1000)
    return ""


@dataclass
class TaskFailure:
    """The first task that failed in a run: its name, its error line and the log holding its whole output."""

    task: str
    error: str
    log: Path | None

    def __str__(self) -> str:
        where = f"; its log: {self.log}" if self.log else ""
        return f"task {self.task!r} failed first: {self.error or 'no error line in its output'}{where}"


@dataclass
class _Task:
    name: str
    started: float
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))


class RunFollower:
    """Shows a kfp.local run as one line per task and writes kfp.local's whole output to the run's log.

    Args:
        out: Where the task lines go (the terminal).
        verbose: Also stream kfp.local's whole output to ``out``, as kfp.local prints it.
        live: Keep a live line of the running tasks (default: when ``out`` is a terminal). Colours go with it.
    """

    def __init__(self, out: TextIO, verbose: bool = False, live: bool | None = None) -> None:
        self.out = out
        self.verbose = verbose
        self.live = bool(live if live is not None else _isatty(out)) and not verbose
        self.log_path: Path | None = None
        self.first_failure: TaskFailure | None = None
        self.results: list[tuple[str, str, float, str]] = []
        self._lock = threading.RLock()
        self._running: dict[int, _Task] = {}
        self._attempts: collections.Counter[str] = collections.Counter()
        self._log: IO[str] | None = None
        self._pending: list[str] = []
        self._live_shown = False

    # -- kfp.local's output ------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        """One line kfp.local wrote (without its newline): to the log and to the writing thread's task."""
        plain = ANSI.sub("", text)
        with self._lock:
            if self._log:
                self._log.write(plain + "\n")
            else:
                self._pending.append(plain)
            task = self._running.get(threading.get_ident())
            if task:
                task.tail.append(plain)
            if self.verbose:
                self.out.write(text + "\n")
                self.out.flush()

    def open_log(self, folder: Path) -> None:
        """Start writing the log into ``folder`` (the run's folder), with what was written before."""
        with self._lock:
            if self._log:
                return
            if not folder.exists():
                folder.mkdir(parents=True)
                _owned_like_parent(folder)  # the Docker runner's containers write their tasks' folders in it
            self.log_path = folder / LOG_FILE
            self._log = self.log_path.open("a", encoding="utf-8", buffering=1)
            _owned_like_parent(self.log_path)  # the run folder's files all belong to one user
            self._log.writelines(line + "\n" for line in self._pending)
            self._pending.clear()
            self._emit(f"one line per task; kfp.local's whole log: {self.log_path}")

    def close(self) -> None:
        """Clear the live line and close the log."""
        with self._lock:
            self._clear_live()
            if self._log:
                self._log.close()
                self._log = None

    # -- task events ---------------------------------------------------------------------------------------
    def task_started(self, name: str) -> None:
        """A task starts in the calling thread."""
        with self._lock:
            self._attempts[name] += 1
            self._running[threading.get_ident()] = _Task(name, time.monotonic())
            if not self.live:
                attempt = self._attempts[name]
                self._emit(f"  {name:<{NAME_WIDTH}} started" + (f" (attempt {attempt})" if attempt > 1 else ""))
            else:
                self._draw_live()

    def task_finished(self, succeeded: bool, outputs: dict[str, Any] | None = None, error: str = "") -> None:
        """The task of the calling thread ended.

        Args:
            succeeded: Whether it succeeded.
            outputs: Its outputs (when it succeeded).
            error: The exception kfp.local raised for it, if any.
        """
        with self._lock:
            task = self._running.pop(threading.get_ident(), None)
            if task is None:
                return
            seconds = time.monotonic() - task.started
            if succeeded:
                status, result = "done", headline(task.name, outputs or {})
            else:
                status = "FAILED"
                result = error_line(list(task.tail)) or _short(ANSI.sub("", error), 1000)
                if self.first_failure is None:
                    self.first_failure = TaskFailure(task.name, result, self.log_path)
            self.results.append((task.name, status, seconds, result))
            shown_status = f"{status:<6}"
            if self.live:
                shown_status = f"{GREEN if succeeded else RED}{shown_status}{RESET}"
            self._emit(f"  {task.name:<{NAME_WIDTH}} {shown_status} {seconds:5.1f} s  {result}".rstrip())
            if not succeeded and self.log_path:
                self._emit(f"  {'':<{NAME_WIDTH}} its whole output: {self.log_path}")

    def tick(self) -> None:
        """Redraw the live line (seconds of the running tasks)."""
        with self._lock:
            if self.live and self._running:
                self._draw_live()

    # -- the terminal ----------------------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        if self.verbose:  # the line goes between kfp.local's lines, into the log too
            if self._log:
                self._log.write(text + "\n")
            self.out.write(text + "\n")
        else:
            self._clear_live()
            self.out.write(text + "\n")
            if self.live and self._running:
                self._draw_live()
        self.out.flush()

    def _draw_live(self) -> None:
        now = time.monotonic()
        running = ", ".join(f"{task.name} {now - task.started:.0f} s" for task in self._running.values())
        width = shutil.get_terminal_size().columns - 1  # a wrapped line could not be redrawn in place
        self.out.write(f"\r\x1b[K{f'  running: {running}'[:width]}")
        self.out.flush()
        self._live_shown = True

    def _clear_live(self) -> None:
        if self._live_shown:
            self.out.write("\r\x1b[K")
            self._live_shown = False


def _owned_like_parent(path: Path) -> None:
    """As root, give what we made to its folder's owner (the pipeline root may be handed to the images' user)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        parent = path.parent.stat()
        os.chown(path, parent.st_uid, parent.st_gid)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Router:
    """Stands for ``sys.stdout`` during a run: splits what is written into lines for the ``RunFollower``."""

    def __init__(self, follower: RunFollower, original: TextIO) -> None:
        self._follower = follower
        self._original = original
        self._partial: dict[int, str] = {}
        self.encoding = getattr(original, "encoding", "utf-8")

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        *lines, rest = (self._partial.pop(ident, "") + text).split("\n")
        for line in lines:
            self._follower.line(line)
        if rest:
            self._partial[ident] = rest
        return len(text)

    def flush(self) -> None:
        for ident in list(self._partial):
            self._follower.line(self._partial.pop(ident))

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._original.fileno()


@contextlib.contextmanager
def follow_run(out: TextIO | None = None, verbose: bool = False, live: bool | None = None) -> Iterator[RunFollower]:
    """Follow the kfp.local runs started inside this context (see the module's docstring).

    Args:
        out: Where the task lines go (default: the current ``sys.stdout``).
        verbose: Stream kfp.local's whole output too.
        live: Keep a live line of the running tasks (default: when ``out`` is a terminal).

    Yields:
        The follower: ``log_path`` and ``first_failure`` once the run has started or failed.
    """
    from kfp.local import task_dispatcher

    original_stdout = sys.stdout
    follower = RunFollower(out or original_stdout, verbose=verbose, live=live)
    original_run = task_dispatcher.run_single_task_implementation
    signature = inspect.signature(original_run)

    def run_task(*args: Any, **kwargs: Any) -> Any:
        from kfp.local import status

        bound = signature.bind(*args, **kwargs).arguments
        follower.open_log(Path(bound["pipeline_root"]) / bound["pipeline_resource_name"])
        follower.task_started(task_label(bound["component_name"]))
        try:
            outputs, task_status = original_run(*args, **kwargs)
        except BaseException as error:
            sys.stdout.flush()
            follower.task_finished(False, error=str(error))
            raise
        sys.stdout.flush()
        follower.task_finished(task_status == status.Status.SUCCESS, outputs)
        return outputs, task_status

    def log_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        # kfp.local warns for each task that resource settings do nothing locally: the log keeps such warnings.
        for text in warnings.formatwarning(message, category, filename, lineno).splitlines():
            follower.line(text)

    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    original_showwarning = warnings.showwarning
    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(follower, stop), daemon=True)
    sys.stdout = _Router(follower, original_stdout)  # type: ignore[assignment]
    task_dispatcher.run_single_task_implementation = run_task
    warnings.showwarning = log_warning
    ticker.start()
    try:
        yield follower
    finally:
        stop.set()
        ticker.join()
        task_dispatcher.run_single_task_implementation = original_run
        warnings.showwarning = original_showwarning
        sys.stdout.flush()
        sys.stdout = original_stdout
        # kfp.local swaps the root logger's handlers per task, from several threads: put back what was there.
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        follower.close()


def _tick(follower: RunFollower, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        follower.tick()
