#!/usr/bin/env bash
# Build mlkeel's Python base image without a container registry, from Debian packages only.
#
#   images/base/build-offline.sh [--force]
#
# 1. debootstrap --variant=minbase $MLKEEL_DEBIAN_SUITE, bookworm by default (python3, python3-venv, ca-certificates, ...) from the mirror apt
#    uses on this machine, plus the bookworm-updates and security suites when they are configured here;
# 2. `docker import` that root filesystem as $ROOTFS_IMAGE;
# 3. images/base/Dockerfile on top: a venv at /opt/venv first on PATH, so `python3` and `pip` behave like
#    python:3.11-slim's (Debian's own python3 refuses `pip install`: externally-managed-environment).
#
# Cached: when $BASE_IMAGE already exists nothing is done (--force rebuilds both images).
# Environment: MLKEEL_DEBIAN_SUITE (default bookworm: Python 3.11; trixie gives Python 3.13, the client test
# environment of `make test-py313`), MLKEEL_BASE_IMAGE (default mlkeel/python-base:3.11-bookworm),
# MLKEEL_ROOTFS_IMAGE (default mlkeel/debian-minbase:$MLKEEL_DEBIAN_SUITE), MLKEEL_DEBIAN_MIRROR (default: the
# first URIs: line of /etc/apt/sources.list.d/debian.sources). Needs root (debootstrap, chroot) and a Docker daemon.
set -euo pipefail

SUITE="${MLKEEL_DEBIAN_SUITE:-bookworm}"
BASE_IMAGE="${MLKEEL_BASE_IMAGE:-mlkeel/python-base:3.11-bookworm}"
ROOTFS_IMAGE="${MLKEEL_ROOTFS_IMAGE:-mlkeel/debian-minbase:$SUITE}"
PACKAGES=python3,python3-venv,ca-certificates,netbase,passwd
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { printf '[build-offline] %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
    log "no Docker daemon reachable (docker info failed); start one, e.g. 'dockerd >/tmp/dockerd.log 2>&1 &'"
    exit 2
fi

if [[ $FORCE == 0 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE exists; nothing to do (--force rebuilds it)"
    exit 0
fi

sources=/etc/apt/sources.list.d/debian.sources
mirror="${MLKEEL_DEBIAN_MIRROR:-}"
security_mirror=""
if [[ -z "$mirror" && -r $sources ]]; then
    mirror=$(awk '/^URIs:/{print $2; exit}' "$sources")
    security_mirror=$(awk '/^URIs:/ && /security/{print $2; exit}' "$sources")
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if [[ $FORCE == 1 ]] || ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install -y debootstrap"; exit 2; }
    rootfs=$(mktemp -d /tmp/mlkeel-rootfs.XXXXXX)
    cleanup() {
        mountpoint -q "$rootfs/proc" && umount "$rootfs/proc"
        rm -rf "$rootfs"
    }
    trap cleanup EXIT
    log "debootstrap --variant=minbase $SUITE from $mirror (about a minute)"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >&2

    # Security and point-release fixes, when this machine's apt is configured for them.
    {
        echo "deb $mirror $SUITE main"
        echo "deb $mirror $SUITE-updates main"
        [[ -n "$security_mirror" ]] && echo "deb $security_mirror $SUITE-security main"
    } >"$rootfs/etc/apt/sources.list"
    mount -t proc proc "$rootfs/proc"
    log "apt-get upgrade inside the root filesystem"
    chroot "$rootfs" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -y -qq upgrade >&2
    chroot "$rootfs" apt-get clean
    umount "$rootfs/proc"

    # What python:3.11-slim's debian:bookworm-slim leaves out too: apt lists, docs (copyright files kept), man.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
    find "$rootfs"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete

    log "docker import -> $ROOTFS_IMAGE"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase $SUITE --include=$PACKAGES" \
        - "$ROOTFS_IMAGE" >/dev/null
    cleanup
    trap - EXIT
fi

log "docker build -> $BASE_IMAGE"
docker build --tag "$BASE_IMAGE" --build-arg ROOTFS_IMAGE="$ROOTFS_IMAGE" --file "$HERE/Dockerfile" "$HERE" >&2
log "done: $BASE_IMAGE ($(docker run --rm "$BASE_IMAGE" python3 --version))"
