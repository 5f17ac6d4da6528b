"""Figures for the per-stage images: sizes (shared layers counted once) and offline build times.

    python benchmarks/images.py                  sizes of the images as they are (built first when missing)
    python benchmarks/images.py --cold           + cold build: every mlkeel stage image and its build cache
                                                 removed first (the base image and the wheelhouse kept)
    python benchmarks/images.py --code-change    + rebuild after a code-only change, then after reverting it
    python benchmarks/images.py --all --json out.json

Every build reads one snapshot of the sources taken at the start, so edits made meanwhile in the work tree do
not turn a "no change" rebuild into a real one. The code-only change is made in that snapshot, not in the
work tree (a comment appended to components/ingest/logic.py): docker sees exactly what it would see after the
edit, and nobody's work tree is touched. Build output goes to --log (default /tmp/mlkeel-images-benchmark.log).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from mlkeel import imagebuild
from mlkeel.components import STAGES

CODE_CHANGE_FILE = "components/ingest/logic.py"


def docker(*args: str, check: bool = True) -> str:
    completed = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and completed.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {completed.stderr.strip()}")
    return completed.stdout


def chain_id(layers: list[str]) -> str:
    """The OCI chain ID of a layer stack (what docker stores a layer under, so shared stacks share it)."""
    chain = layers[0]
    for diff_id in layers[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
    return chain


def layer_blocks(images: list[str]) -> dict[str, dict[tuple[str, str], int]]:
    """Per image, its layers as blocks ``(parent chain, chain) -> bytes``.

    Every step of a local build is an image (docker's build cache): inspecting them gives the size and layer
    count after each step, so each block is one layer (or, below a pulled base, the base's layers together).
    """
    history = {
        image: [line for line in docker("history", "--no-trunc", "--format", "{{.ID}}", image).split() if line]
        for image in images
    }
    known = sorted({step for steps in history.values() for step in steps if step != "<missing>"})
    details = {item["Id"]: item for item in json.loads(docker("image", "inspect", *known))}
    blocks: dict[str, dict[tuple[str, str], int]] = {}
    for image in images:
        layers = details[json.loads(docker("image", "inspect", image))[0]["Id"]]["RootFS"]["Layers"]
        points = {0: 0}
        for step in history[image]:
            if step in details:
                points[len(details[step]["RootFS"]["Layers"])] = int(details[step]["Size"])
        counts = sorted(points)
        blocks[image] = {
            (chain_id(layers[:low]) if low else "", chain_id(layers[:high])): points[high] - points[low]
            for low, high in itertools.pairwise(counts)
        }
    return blocks


def measure_sizes(stages: list[str]) -> dict:
    images = [imagebuild.image_tags(stage, "")[0] for stage in stages]
    blocks = layer_blocks(images)
    unique: dict[tuple[str, str], int] = {}
    for image_blocks in blocks.values():
        unique.update(image_blocks)
    users: dict[tuple[str, str], int] = {}
    for image_blocks in blocks.values():
        for key in image_blocks:
            users[key] = users.get(key, 0) + 1
    base = imagebuild.OFFLINE_BASE_IMAGE
    base_size = int(docker("image", "inspect", "--format", "{{.Size}}", base, check=False).strip() or 0)
    per_image = {}
    for stage, image in zip(stages, images, strict=True):
        size = int(docker("image", "inspect", "--format", "{{.Size}}", image).strip())
        assert size == sum(blocks[image].values()), f"{image}: layer blocks do not add up to its size"
        per_image[stage] = {
            "image": image,
            "profile": imagebuild.image_spec(stage).profile.name,
            "size_bytes": size,
            "layers": len(json.loads(docker("image", "inspect", image))[0]["RootFS"]["Layers"]),
            "own_bytes": sum(size for key, size in blocks[image].items() if users[key] == 1),
        }
    return {
        "images": per_image,
        "sum_of_image_sizes_bytes": sum(item["size_bytes"] for item in per_image.values()),
        "total_unique_bytes": sum(unique.values()),
        "base_image": base,
        "base_image_bytes": base_size,
    }


def timed_build(log_file, **kwargs) -> dict:
    cache_hits = []

    def log(line: str) -> None:
        log_file.write(line + "\n")
        if "Using cache" in line:
            cache_hits.append(line)

    started = time.monotonic()
    results = imagebuild.build_all(offline=True, log=log, **kwargs)
    log_file.flush()
    return {
        "seconds": round(time.monotonic() - started, 1),
        "per_image_seconds": {result.stage: round(result.seconds, 1) for result in results},
        "images_built": sum(not result.up_to_date for result in results),
        "docker_cache_hits": len(cache_hits),
    }


def remove_stage_images() -> int:
    """Remove every mlkeel stage image (all tags, and older untagged builds) so their build cache goes too."""
    ids = set(docker("images", "-q", "--filter", "label=io.mlkeel.stage").split())
    for stage in STAGES:
        repository = imagebuild.image_tags(stage, "")[0].rsplit(":", 1)[0]
        ids |= set(docker("images", "-q", repository).split())
    if ids:
        docker("rmi", "--force", *sorted(ids), check=False)
    docker("builder", "prune", "--all", "--force", check=False)
    return len(ids)


def print_table(figures: dict) -> None:
    sizes = figures["sizes"]
    print(f"{'image':<26} {'profile':<8} {'layers':>6} {'size MB':>9} {'own MB':>8}")
    for item in sizes["images"].values():
        print(
            f"{item['image']:<26} {item['profile']:<8} {item['layers']:>6} {item['size_bytes'] / 1e6:>9.1f}"
            f" {item['own_bytes'] / 1e6:>8.1f}"
        )
    print(f"{'sum of image sizes':<42} {sizes['sum_of_image_sizes_bytes'] / 1e6:>9.1f}")
    print(f"{'all images, shared layers counted once':<42} {sizes['total_unique_bytes'] / 1e6:>9.1f}")
    print(f"{'of which the base ' + sizes['base_image']:<42} {sizes['base_image_bytes'] / 1e6:>9.1f}")
    for name in ("cold_build", "no_change_rebuild", "code_change_rebuild", "revert_rebuild"):
        if name in figures:
            build = figures[name]
            print(
                f"{name.replace('_', ' '):<26} {build['seconds']:>7.1f} s  ({build['images_built']} images built, "
                f"{build['docker_cache_hits']} docker cache hits)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="time a cold build (removes the stage images)")
    parser.add_argument("--code-change", action="store_true", help="time a rebuild after a code-only change")
    parser.add_argument("--all", action="store_true", help="--cold and --code-change")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--log", type=Path, default=Path("/tmp/mlkeel-images-benchmark.log"))
    options = parser.parse_args()
    imagebuild.require_docker()
    stages = list(STAGES)
    figures: dict = {"revision": imagebuild.source_revision(), "stages": stages}
    root = imagebuild.repo_root()
    snapshot: dict[str, bytes] = {}
    for stage in stages:
        snapshot.update(imagebuild.snapshot_context(root, f"images/{stage}/Dockerfile"))
    changed = {**snapshot, CODE_CHANGE_FILE: snapshot[CODE_CHANGE_FILE] + b"\n# benchmark: a code-only change\n"}
    with options.log.open("w", encoding="utf-8") as log_file:
        if options.cold or options.all:
            figures["removed_images"] = remove_stage_images()
            figures["cold_build"] = timed_build(log_file, sources=snapshot)
        else:
            timed_build(log_file, sources=snapshot)  # builds whatever is missing or stale
        figures["no_change_rebuild"] = timed_build(log_file, sources=snapshot)
        if options.code_change or options.all:
            figures["code_change_rebuild"] = timed_build(log_file, sources=changed)
            figures["revert_rebuild"] = timed_build(log_file, sources=snapshot)
    figures["sizes"] = measure_sizes(stages)
    print_table(figures)
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text)
    if options.json:
        options.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
