"""Build the project's Go tools (``tools/<name>/``, each its own Go module) once and cache them by content.

A tool's cache key hashes its go.mod, go.sum, Go sources, ``ldflags`` file (linker flags, one per line: how
upstream's builds stamp version strings) and ``binaries`` file plus the Go version and platform, so a machine
builds each version once (``~/.cache/mlkeel/bin/<name>-<key>/<binary>``) and a changed pin rebuilds. Nothing is
downloaded but Go modules through the Go module proxy.

A tool builds one binary named after its folder from the package ``.``, unless its folder holds a ``binaries``
file: one ``BINARY PACKAGE`` pair a line (``#`` comments), for a module that pins upstream main packages
without code of its own (``tools/kfpapiserver``: the KFP API server, its agents, driver and launcher).

CLI: ``python -m mlkeel.cluster.gotools build NAME[:BINARY]...`` prints each binary's path (``make`` targets use
it); ``NAME`` alone builds every binary of the tool.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mlkeel.errors import MlkeelError

TOOLS_DIR = Path(__file__).resolve().parents[3] / "tools"
CACHE_DIR_ENV = "MLKEEL_CACHE_DIR"
# A Go tool that needs a newer toolchain than the machine's names it here; the go command fetches that version
# through the module proxy. Empty: the machine's own Go.
GOTOOLCHAIN_ENV = "GOTOOLCHAIN"
LDFLAGS_FILE = "ldflags"
BINARIES_FILE = "binaries"


class GoToolError(MlkeelError):
    """A Go tool cannot be found or built."""


def cache_root() -> Path:
    """``$MLKEEL_CACHE_DIR`` or ``~/.cache/mlkeel``: where built binaries are kept between runs."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "mlkeel")


def tool_dir(name: str) -> Path:
    """The source folder of tool ``name``; an error naming the folder when it is missing."""
    folder = TOOLS_DIR / name
    if not (folder / "go.mod").is_file():
        raise GoToolError(
            f"{folder}: no go.mod; the Go tools ship with a checkout of the mlkeel repository, not the wheel"
        )
    return folder


def go_version() -> str:
    """``go version`` output (``go version go1.26.8 linux/amd64``); an error when Go is not installed."""
    go = shutil.which("go")
    if go is None:
        raise GoToolError("the go command is not on PATH: install Go (https://go.dev/doc/install) to build tools/")
    return subprocess.run([go, "version"], check=True, capture_output=True, text=True).stdout.strip()


def source_key(name: str) -> str:
    """A short hash of everything that decides the binary: sources, module files, Go version, toolchain."""
    folder = tool_dir(name)
    digest = hashlib.sha256()
    digest.update(go_version().encode())
    digest.update(os.environ.get(GOTOOLCHAIN_ENV, "").encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum", LDFLAGS_FILE, BINARIES_FILE)):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def linker_flags(name: str) -> str:
    """``-s -w`` (no symbol tables: smaller binaries) plus the lines of the tool's ``ldflags`` file, if any."""
    extra = tool_dir(name) / LDFLAGS_FILE
    lines = extra.read_text().splitlines() if extra.is_file() else []
    return " ".join(["-s", "-w", *(line.strip() for line in lines if line.strip() and not line.startswith("#"))])


def tool_binaries(name: str) -> dict[str, str]:
    """The binaries tool ``name`` builds, each with its Go package: ``{name: "."}`` without a ``binaries`` file.

    Raises:
        GoToolError: A line of the ``binaries`` file is not ``BINARY PACKAGE`` (the message names file and line).
    """
    listing = tool_dir(name) / BINARIES_FILE
    if not listing.is_file():
        return {name: "."}
    binaries: dict[str, str] = {}
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise GoToolError(f"{listing}:{number}: expected 'BINARY PACKAGE', got {line.strip()!r}")
        binaries[fields[0]] = fields[1]
    if not binaries:
        raise GoToolError(f"{listing}: lists no binary")
    return binaries


def _one_binary(name: str, binary: str | None) -> tuple[str, str]:
    """``(binary, package)`` of tool ``name``: its only binary when ``binary`` is None; an error naming the choices."""
    binaries = tool_binaries(name)
    if binary is None:
        if len(binaries) != 1:
            raise GoToolError(f"tools/{name} builds {', '.join(binaries)}: name one ({name}:BINARY)")
        binary = next(iter(binaries))
    if binary not in binaries:
        raise GoToolError(f"tools/{name} has no binary {binary!r}; it builds {', '.join(binaries)}")
    return binary, binaries[binary]


def binary_path(name: str, binary: str | None = None) -> Path:
    """Where the cached binary of tool ``name`` at its current sources lives (it may not be built yet).

    Args:
        name: A folder under ``tools/``.
        binary: One of the tool's binaries (``tool_binaries``); None for a tool that builds one.
    """
    binary, _ = _one_binary(name, binary)
    return cache_root() / "bin" / f"{name}-{source_key(name)}" / binary


def ensure_binary(name: str, binary: str | None = None, *, quiet: bool = False) -> Path:
    """Return the cached binary of tool ``name``, building it first when this version was never built.

    Args:
        name: A folder under ``tools/`` holding a Go module (its main package, or a ``binaries`` list).
        binary: One of the tool's binaries; None for a tool that builds one.
        quiet: Say nothing when building (the build's own errors are still raised).

    Returns:
        The binary's path.

    Raises:
        GoToolError: Go is missing, the binary is unknown, or the build failed (the message holds the go
            command's last lines).
    """
    binary, package = _one_binary(name, binary)
    target = binary_path(name, binary)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{binary}.{os.getpid()}.partial")
    label = f"tools/{name}" if binary == name else f"tools/{name} {binary} ({package})"
    if not quiet:
        print(f"building {label} (first time for this version; cached as {target}) ...", file=sys.stderr)
    started = time.monotonic()
    result = subprocess.run(
        ["go", "build", "-trimpath", f"-ldflags={linker_flags(name)}", "-o", str(partial), package],
        cwd=tool_dir(name),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-30:])
        raise GoToolError(f"go build of {label} failed (exit {result.returncode}):\n{tail}")
    partial.replace(target)  # atomic: a concurrent run sees the whole binary or none
    if not quiet:
        size_mib = target.stat().st_size / 2**20
        print(f"built {label} in {time.monotonic() - started:.0f} s ({size_mib:.0f} MiB)", file=sys.stderr)
    return target


def main(argv: list[str] | None = None) -> int:
    """``build NAME[:BINARY]...``: build (or find) each binary and print its path, one per line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "build":
        print("usage: python -m mlkeel.cluster.gotools build NAME[:BINARY]...", file=sys.stderr)
        return 2
    try:
        for spec in args[1:]:
            name, _, binary = spec.partition(":")
            for each in [binary] if binary else list(tool_binaries(name)):
                print(ensure_binary(name, each))
    except GoToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
