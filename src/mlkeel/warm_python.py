"""A warm Python for kfp.local's SubprocessRunner: each task in its own process, forked from a warm server.

Why: kfp.local starts a new interpreter for every task, and the training pipeline's tasks spent more time
importing pandas, scikit-learn, skops and mlflow (4-5 s per task here) than working. The server imports them
once, while the run starts and between tasks; forking it gives each task a fresh process with those modules
already loaded, which is how ``multiprocessing``'s forkserver and pre-forking servers (gunicorn's
``--preload``) save the same cost.

How: ``warm_python()`` starts ``python -m mlkeel.warm_python SOCKET MODULE...`` and writes a launcher script
(``python3`` in a private folder). While the context is open, ``sys.executable`` names the launcher, which is
the interpreter kfp.local's SubprocessRunner substitutes for ``python3`` in a task's command; the compiled
component YAML is unchanged. The launcher (``mlkeel.warm_client``) sends the task's arguments, working folder,
environment and standard streams over the socket. For each task the server forks a supervisor, which forks the
task process, reports its pid, waits, and reports its exit status. A task whose command is not
``python -m ...``, or any task when the server is gone, runs in a fresh interpreter as before.
``mlkeel run ... --runner subprocess`` runs every task in a fresh interpreter.

The server only imports. A forked child has none of its parent's threads: the pools that start at import
(numpy's and scipy's OpenBLAS workers, Arrow's jemalloc thread) are fork-aware and start again in the child,
but libgomp's is not: had the server run one OpenMP region, every task's first one would hang (seen here by
fitting a model in the server). ``tests/unit/test_warm_python.py`` runs OpenMP and BLAS in a forked task.

What differs from a fresh interpreter: the preloaded modules were imported once, in the server's environment
(the run's own, plus the ``_KFP_RUNTIME=true`` every KFP task has, so settings a library reads at import time
are the same); the server exits on its own if the run that started it dies; numpy's global random
state is reseeded in each task, as a new process would be. Linux and macOS have ``fork``; on macOS the
Objective-C runtime may refuse it, so the warm runner is offered where ``os.fork`` and ``socket.send_fds``
exist and tested on Linux.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mlkeel import warm_client

# What the training pipeline's stages import (each imports its heavy libraries inside its functions; this list
# is what their task processes had loaded, read off ``sys.modules``). skops comes before mlflow: it scans every
# loaded module once, at import (see ``mlkeel.modeling.import_model_libraries``). Optional extras that are not
# installed are skipped.
TRAINING_LIBRARIES = (
    # every task: its data and KFP's executor
    "numpy",
    "pandas",
    "pyarrow.compute",
    "pyarrow.dataset",
    "pyarrow.parquet",
    "kfp.dsl.executor_main",
    # split onwards: scikit-learn, then the model's serialisation and MLflow
    "sklearn.model_selection",
    "skops.io",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.inspection",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "sqlalchemy.dialects.sqlite",
    "alembic.command",
    "opentelemetry.sdk.metrics",
    "narwhals._pandas_like.namespace",
    # fairness, explain, model card
    "matplotlib.backends.backend_agg",
    "matplotlib.figure",
    "fairlearn.metrics",
    "jinja2",
)
# The monitoring pipeline adds drift detection (and retrains with the training stages).
MONITORING_LIBRARIES = (*TRAINING_LIBRARIES, "scipy.stats", "alibi_detect.cd.tabular")
logger = logging.getLogger(__name__)
LAUNCHER_NAME = "python3"
KFP_RUNTIME_VARIABLE = "_KFP_RUNTIME"
SOCKET_NAME = "server.sock"
SERVER_LOG_NAME = "server.log"
# How long a starting server may take to listen before the run goes on without it (tasks then run cold).
SERVER_START_SECONDS = 30.0
# How often an idle server checks that the run that started it is still there.
PARENT_CHECK_SECONDS = 1.0
# Connections wait here while the server finishes the import it is in; kfp.local runs one task at a time.
BACKLOG = 16


def available() -> bool:
    """Whether this platform can fork a warm server and pass it file descriptors."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def _launcher_text(socket_path: Path, python: str) -> str:
    # A shell script, not a "#!python" one: a shebang line has a length limit that a deep venv path can pass.
    # -I -S: no site-packages, no PYTHON* variables and no script folder on sys.path, so it starts in ms.
    command = [python, "-IS", warm_client.__file__, str(socket_path)]
    return f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n'


@contextlib.contextmanager
def warm_python(modules: Sequence[str] = TRAINING_LIBRARIES) -> Iterator[Path]:
    """Start a warm server and make ``sys.executable`` its launcher until the context closes.

    Args:
        modules: Modules the server imports, in order, whenever no task is waiting.

    Yields:
        The launcher's path (also ``sys.executable`` inside the context).
    """
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="mlkeel-warm-") as folder:  # mode 0700: only this user connects
        socket_path = Path(folder) / SOCKET_NAME
        launcher = Path(folder) / LAUNCHER_NAME
        launcher.write_text(_launcher_text(socket_path, python))
        launcher.chmod(0o700)
        with open(Path(folder) / SERVER_LOG_NAME, "wb") as log:
            server = subprocess.Popen(
                [python, "-m", "mlkeel.warm_python", str(socket_path), *modules],
                # Every KFP task runs with _KFP_RUNTIME=true, which kfp reads at import to load only its executor.
                env={**os.environ, KFP_RUNTIME_VARIABLE: "true"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(socket_path, server)
            sys.executable = str(launcher)
            yield launcher
        finally:
            sys.executable = python
            if server.poll() is not None:  # it stopped early: the tasks after that ran in fresh interpreters
                logger.warning(
                    "the warm Python server exited with status %s: %s",
                    server.returncode,
                    (Path(folder) / SERVER_LOG_NAME).read_text(errors="replace")[-2000:],
                )
            server.terminate()
            server.wait()


def _wait_for(socket_path: Path, server: subprocess.Popen[bytes]) -> None:
    """Wait until the server listens (it binds before any import: a few hundred ms at most) or has exited."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not socket_path.exists() and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def serve(socket_path: str, modules: Sequence[str]) -> NoReturn:
    """Listen on ``socket_path``; fork a supervised task process per connection; import ``modules`` when idle.

    The server takes tasks from the start and imports the next module only while no task is waiting, so the
    first tasks (ingest, validate) need not wait for mlflow: a task gets what is imported by the time it
    arrives and imports the rest itself, as a fresh interpreter would. Imports and forks take turns in this
    one thread, so no task is forked mid-import. A module that is not installed (an optional extra) is left
    to the tasks that need it. Never returns in the server; a task process ends in ``_become_task``.

    Args:
        socket_path: Where to listen (a Unix socket; its private folder keeps other users out).
        modules: Modules to import, in order.
    """
    import select

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(BACKLOG)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    to_import = list(modules)
    parent = os.getppid()
    while True:
        if not select.select([listener], [], [], 0 if to_import else PARENT_CHECK_SECONDS)[0]:  # no task waits
            if to_import:
                _preload(to_import.pop(0), done=not to_import)
            elif os.getppid() != parent:  # the run died without closing its context: nobody will call again
                os._exit(0)
            continue
        connection, _ = listener.accept()
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _supervise(connection)
        connection.close()


def _preload(module: str, done: bool) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        print(f"not preloaded: {module} ({error})", flush=True)
    if done:
        print(f"preloaded {len(sys.modules)} modules", flush=True)


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, descriptors, _, _ = socket.recv_fds(connection, warm_client.HEADER.size, 3)
    (length,) = warm_client.HEADER.unpack(header)
    payload = bytearray()
    while len(payload) < length:
        chunk = connection.recv(length - len(payload))
        if not chunk:
            raise ConnectionError("the launcher closed the connection mid-request")
        payload += chunk
    return json.loads(payload), descriptors


def _reply(connection: socket.socket, message: dict[str, int]) -> None:
    with contextlib.suppress(OSError):  # the launcher was killed: nobody is left to tell
        connection.sendall((json.dumps(message) + "\n").encode())


def _supervise(connection: socket.socket) -> NoReturn:
    """Fork the task process, report its pid and then its exit status; the supervisor then exits."""
    request, descriptors = _receive(connection)
    task_pid = os.fork()
    if task_pid == 0:
        connection.close()
        _become_task(request, descriptors)
    for descriptor in descriptors:
        os.close(descriptor)  # so the task's streams close when the task ends
    _reply(connection, {"pid": task_pid})
    _, status = os.waitpid(task_pid, 0)
    _reply(connection, {"exit": os.waitstatus_to_exitcode(status)})
    os._exit(0)


def _become_task(request: dict[str, Any], descriptors: list[int]) -> NoReturn:
    """Turn this forked process into ``python -m MODULE ARGS...`` as the launcher was asked to run it."""
    import runpy

    for target, descriptor in enumerate(descriptors):
        os.dup2(descriptor, target)
        os.close(descriptor)
    for signal_number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "numpy" in sys.modules:  # a fresh process seeds numpy's global generator from the OS
        sys.modules["numpy"].random.seed()
    module, *arguments = request["argv"][1:]
    sys.argv = [module, *arguments]
    sys.path[0] = request["cwd"]  # what ``python -m`` puts first
    status = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        status = _exit_status(stop.code)
    except BaseException:
        traceback.print_exc()
        status = 1
    _end_task(status)


def _exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` gives a process (None is 0, an int is itself, anything else is printed, 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _end_task(status: int) -> NoReturn:
    """End the task process as ``multiprocessing`` ends its children: atexit handlers, flushed streams, ``os._exit``.

    A full interpreter shutdown would also tear down every loaded module one by one: about 1 s per training
    task here (kfp.local's "finished" line came 1.0 s after the task's last log line), for nothing the task
    wrote.
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
