"""The warm Python: a task launched through it behaves as ``python -m`` would, in a process that has the
preloaded modules already imported. Real server process, real sockets, real forks; no kfp here (the e2e
pipeline tests run kfp.local through it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlkeel import warm_python
from mlkeel.warm_python import SOCKET_NAME

pytestmark = pytest.mark.skipif(not warm_python.available(), reason="needs os.fork and socket.send_fds (POSIX)")

PRELOADED = "xml.dom.minidom"  # not imported by a bare interpreter, nor by the launcher
PROBE = f"""
import atexit, json, os, sys
report = {{
    "preloaded": {PRELOADED!r} in sys.modules,
    "name": __name__,
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "variable": os.environ.get("PROBE_VARIABLE"),
    "pid": os.getpid(),
}}
if "numpy" in sys.modules:
    report["random"] = float(sys.modules["numpy"].random.random())
atexit.register(lambda: open("atexit-ran", "w").write("yes"))
print(json.dumps(report))
print("to stderr", file=sys.stderr)
action = sys.argv[1] if len(sys.argv) > 1 else ""
if action == "raise":
    raise ValueError("the probe failed on purpose")
if action == "kill":
    os.kill(os.getpid(), 9)
if action == "wait":
    print("waiting", flush=True)
    import time
    time.sleep(60)
sys.exit(int(action) if action.isdigit() else 0)
"""


@pytest.fixture
def task_folder(tmp_path: Path) -> Path:
    (tmp_path / "probe.py").write_text(PROBE)
    return tmp_path


def launch(launcher: Path, folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(launcher), *arguments],
        cwd=folder,
        env={**os.environ, "PROBE_VARIABLE": "set by the caller"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def launch_once_warm(launcher: Path, folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Launch the probe until it runs after the server's imports (tasks before then import for themselves)."""
    deadline = time.monotonic() + 60
    while True:
        completed = launch(launcher, folder, "-m", "probe", *arguments)
        if json.loads(completed.stdout.splitlines()[0])["preloaded"] or time.monotonic() > deadline:
            return completed
        time.sleep(0.2)


def test_a_task_runs_as_python_dash_m_with_the_preloaded_modules_already_imported(task_folder: Path) -> None:
    with warm_python.warm_python([PRELOADED]) as launcher:
        completed = launch_once_warm(launcher, task_folder, "7", "extra")

    report = json.loads(completed.stdout.splitlines()[0])
    assert report["preloaded"] is True
    assert report["name"] == "__main__"
    assert report["argv"] == [str(task_folder / "probe.py"), "7", "extra"]
    assert report["cwd"] == str(task_folder)
    assert report["variable"] == "set by the caller"
    assert report["pid"] != os.getpid()
    assert completed.stderr == "to stderr\n"  # stdout and stderr stay apart, nothing added
    assert completed.returncode == 7
    assert (task_folder / "atexit-ran").read_text() == "yes"


def test_a_failing_task_prints_its_traceback_and_exits_1(task_folder: Path) -> None:
    with warm_python.warm_python([PRELOADED]) as launcher:
        completed = launch_once_warm(launcher, task_folder, "raise")

    assert completed.returncode == 1
    assert "ValueError: the probe failed on purpose" in completed.stderr
    assert 'probe.py", line' in completed.stderr


def test_a_task_killed_by_a_signal_exits_as_a_shell_reports_it(task_folder: Path) -> None:
    with warm_python.warm_python([PRELOADED]) as launcher:
        completed = launch_once_warm(launcher, task_folder, "kill")

    assert completed.returncode == 128 + signal.SIGKILL


def test_a_signal_to_the_launcher_reaches_the_task(task_folder: Path) -> None:
    with warm_python.warm_python([PRELOADED]) as launcher:
        launch_once_warm(launcher, task_folder)
        process = subprocess.Popen(
            [str(launcher), "-m", "probe", "wait"], cwd=task_folder, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        report = json.loads(process.stdout.readline())
        assert process.stdout.readline() == "waiting\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM

    with pytest.raises(ProcessLookupError):  # the task itself ended, not only its launcher
        os.kill(report["pid"], 0)


def test_tasks_do_not_share_numpy_random_state(task_folder: Path) -> None:
    with warm_python.warm_python(["numpy", PRELOADED]) as launcher:
        first = json.loads(launch_once_warm(launcher, task_folder).stdout.splitlines()[0])
        second = json.loads(launch_once_warm(launcher, task_folder).stdout.splitlines()[0])

    assert first["random"] != second["random"]


def test_without_its_server_the_launcher_runs_a_fresh_interpreter_and_says_so(task_folder: Path) -> None:
    with warm_python.warm_python([PRELOADED]) as launcher:
        (launcher.parent / SOCKET_NAME).unlink()
        completed = launch(launcher, task_folder, "-m", "probe", "3")

    assert completed.returncode == 3
    assert json.loads(completed.stdout.splitlines()[0])["preloaded"] is False
    assert "mlkeel warm python: no server at" in completed.stderr
    assert "running a fresh interpreter" in completed.stderr


def test_a_command_other_than_dash_m_runs_in_a_fresh_interpreter(task_folder: Path) -> None:
    code = f"import sys; print({PRELOADED!r} in sys.modules, sys.argv[1:])"
    with warm_python.warm_python([PRELOADED]) as launcher:
        launch_once_warm(launcher, task_folder)
        completed = launch(launcher, task_folder, "-c", code, "an argument")

    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "False ['an argument']\n", "")


def test_the_context_gives_back_sys_executable_and_removes_its_folder(task_folder: Path) -> None:
    python = sys.executable
    with warm_python.warm_python([PRELOADED]) as launcher:
        assert sys.executable == str(launcher)
        assert launcher.stat().st_mode & 0o777 == 0o700
    assert sys.executable == python
    assert not launcher.parent.exists()


def test_a_module_that_is_not_installed_is_left_to_the_tasks(task_folder: Path) -> None:
    with warm_python.warm_python(["mlkeel_no_such_module", PRELOADED]) as launcher:
        completed = launch_once_warm(launcher, task_folder)

    assert json.loads(completed.stdout.splitlines()[0])["preloaded"] is True


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting for init to reap it has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the server through /proc (Linux)")
def test_the_server_exits_when_the_run_that_started_it_is_killed(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom mlkeel.warm_python import warm_python\n"
            f"with warm_python([{PRELOADED!r}]) as launcher:\n    print(launcher, flush=True)\n    time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    socket_path = str(Path(run.stdout.readline().strip()).parent / SOCKET_NAME)
    (server,) = [
        int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and socket_path in _cmdline(entry)
    ]
    assert _running(server)

    run.kill()
    run.wait()
    deadline = time.monotonic() + 30
    while _running(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(server)


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


NATIVE_THREADS_PROBE = """
import numpy, scipy.linalg
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_info, threadpool_limits

with threadpool_limits(limits=2):
    features, labels = make_classification(n_samples=20_000, n_features=20, random_state=0)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(features, labels)
    product = numpy.ones((400, 400)) @ numpy.ones((400, 400))
    inverse = scipy.linalg.inv(numpy.eye(300) * 2.0)
    pools = sorted({(pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()})
print(model.score(features, labels) > 0.9, product[0, 0], inverse[0, 0], pools)
"""


def test_a_task_forked_from_the_fully_preloaded_server_runs_openmp_and_blas_threads(tmp_path: Path) -> None:
    """The server imports every stage library, and starts thread pools doing so (OpenBLAS's workers, Arrow's
    jemalloc thread). A forked task has none of its parent's threads; fork-aware libraries start theirs again,
    and OpenMP must never have run in the server (libgomp hangs in a child after that). A task that fits a
    histogram gradient boosting model and multiplies matrices on 2 threads each shows both hold."""
    from mlkeel.warm_python import MONITORING_LIBRARIES, SERVER_LOG_NAME

    (tmp_path / "native_threads.py").write_text(NATIVE_THREADS_PROBE)
    with warm_python.warm_python(MONITORING_LIBRARIES) as launcher:
        log = launcher.parent / SERVER_LOG_NAME
        deadline = time.monotonic() + 300
        while "preloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        server_log = log.read_text()
        completed = subprocess.run(
            [str(launcher), "-m", "native_threads"], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    assert "preloaded" in server_log and "not preloaded" not in server_log, server_log
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "True 400.0 0.5 [('openblas', 2), ('openmp', 2)]\n"
