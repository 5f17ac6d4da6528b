"""The client half of the warm Python (``mlkeel.warm_python``): the executable kfp.local runs in place of Python.

kfp.local's SubprocessRunner starts each task as ``<python> -m kfp.dsl.executor_main ...``. A warm run points
``<python>`` at a launcher script that runs this file (``python -I -S warm_client.py SOCKET ARGS...``). It
hands the task's arguments, working folder, environment and standard streams to the warm server, which forks a
process that already imported the stages' libraries and runs the task there. The task writes straight to the
streams kfp.local reads; this process only relays signals and the exit status.

Standard library only, and run by path with ``python -I -S``: importing ``mlkeel`` (or anything from
site-packages) here would cost the start-up time the server exists to save.
"""

import json
import os
import signal
import socket
import struct
import sys

# Request framing: an 8-byte big-endian length, sent with the three standard stream descriptors, then JSON.
HEADER = struct.Struct(">Q")
# Only ``python -m MODULE ...`` is served warm (it is how every KFP Python task starts); anything else runs
# in a fresh interpreter, exactly as without the server.
WARM_OPTION = "-m"


def cold(python: str, arguments: list[str], why: str) -> None:
    """Replace this process with a fresh ``python`` running ``arguments`` (never returns).

    Args:
        python: The real interpreter.
        arguments: Its arguments.
        why: Why the task does not run warm; printed on stderr unless empty.
    """
    if why:
        print(f"mlkeel warm python: {why}; running a fresh interpreter", file=sys.stderr, flush=True)
    os.execv(python, [python, *arguments])


def launch(socket_path: str, python: str, arguments: list[str]) -> int:
    """Run ``python ARGUMENTS`` as a process forked by the warm server at ``socket_path``.

    Args:
        socket_path: The server's Unix socket.
        python: The real interpreter, used instead when the server cannot take the task.
        arguments: The interpreter arguments (``-m MODULE ARGS...``).

    Returns:
        The task's exit status (128 + N when signal N ended it), as a shell reports it.
    """
    if not arguments or arguments[0] != WARM_OPTION:
        cold(python, arguments, "")
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(socket_path)
    except OSError as error:
        cold(python, arguments, f"no server at {socket_path} ({error.strerror})")
    request = json.dumps({"argv": arguments, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(connection, [HEADER.pack(len(request))], [0, 1, 2])
    connection.sendall(request)
    replies = connection.makefile("r", encoding="utf-8")
    task_pid = 0

    def forward(signal_number: int, _frame: object) -> None:
        if task_pid:
            os.kill(task_pid, signal_number)

    for signal_number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, forward)
    for line in replies:
        reply = json.loads(line)
        if "pid" in reply:
            task_pid = reply["pid"]
        elif "exit" in reply:
            status = reply["exit"]
            return 128 - status if status < 0 else status
    print("mlkeel warm python: the server closed the task without an exit status", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1], sys.executable, sys.argv[2:]))
