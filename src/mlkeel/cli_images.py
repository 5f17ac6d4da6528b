"""``mlkeel images ...``: build and list the per-stage container images (``mlkeel images`` on the main CLI)."""

from __future__ import annotations

from collections.abc import Callable

import click

from mlkeel.clitools import reports_user_errors
from mlkeel.components import STAGES


def _stage_option(verb: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--stage`` (repeatable): the stages a command acts on; none = every stage."""
    return click.option(
        "--stage",
        "stages",
        multiple=True,
        type=click.Choice(STAGES),
        help=f"{verb} only this stage's image (repeatable). Default: every stage.",
    )


def _selected(stages: tuple[str, ...]) -> list[str]:
    return [stage for stage in STAGES if stage in stages] if stages else list(STAGES)


@click.group(name="images")
def images() -> None:
    """Build and list the per-stage container images (images/<stage>/Dockerfile)."""


@images.command(name="build")
@click.option(
    "--offline",
    is_flag=True,
    help="No registry, no internet inside the build: FROM the debootstrap base image (built when missing) "
    "and install from a wheelhouse that this host fills and serves on 127.0.0.1.",
)
@_stage_option("Build")
@click.option(
    "--base-image",
    default=None,
    help="FROM image. Default: python:3.11-slim, or mlkeel/python-base:3.11-bookworm with --offline.",
)
@click.option("--force", is_flag=True, help="Run docker build even for images that are up to date.")
@click.option("--push", is_flag=True, help="Then push every image built (both tags) to --registry.")
@click.option("--registry", default="", help="With --push: HOST[/PATH] to push to, e.g. ghcr.io/acme.")
@reports_user_errors
def build(
    offline: bool, stages: tuple[str, ...], base_image: str | None, force: bool, push: bool, registry: str
) -> None:
    """Build stage images with `docker build`, tagged <registry>/<stage>:<version> and :<version>-<gitsha>."""
    from mlkeel import imagebuild
    from mlkeel.imagepush import check_registry

    if registry and not push:
        raise click.UsageError("--registry is where --push pushes to: add --push")
    if push:
        if not registry:
            raise click.UsageError("--push needs --registry HOST[/PATH]")
        registry = check_registry(registry)  # a bad registry is refused before anything is built
    selected = _selected(stages)
    results = imagebuild.build_all(offline=offline, stages=selected, base_image=base_image, force=force)
    click.echo(f"{'image':<28} {'size MB':>8} {'seconds':>8}  status")
    for result in results:
        status = "up to date" if result.up_to_date else "built"
        click.echo(
            f"{result.tags[0]:<28} {result.size_bytes / 1e6:>8.1f} {result.seconds:>8.1f}  {status}"
            f"  (also {', '.join(result.tags[1:]) or '-'})"
        )
    if push:
        _push_and_report(registry, selected)


@images.command(name="push")
@click.option("--registry", required=True, help="HOST[/PATH] to push to, e.g. ghcr.io/acme or 127.0.0.1:5000/mlkeel.")
@_stage_option("Push")
@reports_user_errors
def push(registry: str, stages: tuple[str, ...]) -> None:
    """Tag and push the built stage images (<version> and <version>-<gitsha>) to a registry; print the digests.

    Then `mlkeel compile --image-registry HOST[/PATH]` makes the compiled pipelines (and `mlkeel submit`) run them.
    """
    _push_and_report(registry, _selected(stages))


def _push_and_report(registry: str, stages: list[str]) -> None:
    from mlkeel.imagepush import check_pushable, push_all

    registry = check_pushable(registry, stages)  # every missing image named before anything is pushed
    click.echo(f"{'pushed':<44} {'seconds':>8}  digest")
    for result in push_all(registry, stages):
        click.echo(f"{result.tags[0]:<44} {result.seconds:>8.1f}  {result.digest}")
        for tag in result.tags[1:]:
            click.echo(f"  also {tag}")
    click.echo(f"compiled pipelines use these after: mlkeel compile --image-registry {registry}")


@images.command(name="list")
@reports_user_errors
def list_() -> None:
    """List every stage image, its requirements profile and whether the local Docker daemon has it."""
    from mlkeel import imagebuild

    imagebuild.require_docker()
    click.echo(f"{'image':<28} {'profile':<8} {'size MB':>8}  {'created':<19}  revision")
    for image in imagebuild.list_images():
        if not image.exists:
            click.echo(f"{image.tag:<28} {image.profile:<8} {'-':>8}  {'not built':<19}  -")
            continue
        size = f"{image.size_bytes / 1e6:>8.1f}"
        click.echo(f"{image.tag:<28} {image.profile:<8} {size}  {image.created:<19}  {image.revision}")


@images.command(name="generate")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a generated file is out of date.")
@reports_user_errors
def generate(check: bool) -> None:
    """Rewrite images/<stage>/Dockerfile and images/requirements/*.txt from pyproject + constraints."""
    from mlkeel import imagebuild
    from mlkeel.errors import MlkeelError

    root = imagebuild.repo_root()
    if check:
        stale = imagebuild.stale_generated_files(root)
        if stale:
            names = ", ".join(str(path.relative_to(root)) for path in stale)
            raise MlkeelError(f"out of date: {names}; run `mlkeel images generate`")
        click.echo("generated image files are up to date")
        return
    changed = imagebuild.write_generated_files(root)
    for path in changed:
        click.echo(f"wrote {path.relative_to(root)}")
    if not changed:
        click.echo("generated image files are up to date")
