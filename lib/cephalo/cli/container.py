"""The container's commands: ``cephalo export`` (a submission as a self-contained bundle,
and with ``--container`` the files that build the challenge's image) and ``cephalo predict``
(what the container runs: a bundle, or a submission folder, on a stack)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("predict")
@click.option("--stack", type=click.Path(dir_okay=False, exists=True), help="With --ensemble.")
@click.option(
    "--ensemble",
    type=click.Path(file_okay=False, exists=True),
    help="A submission folder written by `cephalo ensemble`.",
)
@click.option(
    "--bundle",
    type=click.Path(file_okay=False, exists=True),
    help="A bundle written by `cephalo export` (self-contained: the container's form).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(),
    help="With --bundle: a stack, or a folder holding exactly one .mha "
    "[default: /input/images/lateral-dental-x-rays, the platform's].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="The JSON to write [with --bundle, default: /output/orthodontic-landmarks.json].",
)
@click.option(
    "--expected",
    type=click.Path(dir_okay=False, exists=True),
    help="Then check the output against this JSON (the container's test.sh does).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.001,
    show_default=True,
    help="With --expected: the largest distance allowed between two landmarks, in pixels.",
)
def predict_command(
    stack: str | None,
    ensemble: str | None,
    bundle: str | None,
    input_path: str | None,
    out: str | None,
    expected: str | None,
    tolerance: float,
) -> None:
    """Predict a stacked .mha with a stored ensemble and write the challenge's JSON: what
    the grand-challenge container does (slice by slice, padding cropped, every member with
    its TTA view, fused with the stored weights). Either --ensemble with --stack, or
    --bundle (with --input)."""
    from cephalo.container.bundle import (
        PLATFORM_INPUT,
        PLATFORM_OUTPUT,
        check_expected,
        predict_with_bundle,
    )
    from cephalo.ensemble.build import predict_stack

    if (ensemble is None) == (bundle is None):
        raise click.UsageError("give either --ensemble (with --stack) or --bundle")
    if bundle is not None:
        if stack is not None:
            raise click.UsageError("--bundle reads --input, not --stack")
        source = Path(input_path) if input_path else PLATFORM_INPUT
        target = Path(out) if out else PLATFORM_OUTPUT
        path = predict_with_bundle(Path(bundle), source, target)
    else:
        if stack is None or out is None or input_path is not None:
            raise click.UsageError("--ensemble needs --stack and --out (not --input)")
        path = predict_stack(Path(ensemble), Path(stack), Path(out))
    click.echo(f"wrote {path}; {peak_memory()}")
    if expected is not None:
        worst = check_expected(path, Path(expected), tolerance)
        click.echo(f"matches {expected}: every landmark within {worst:.4f} px")


def peak_memory() -> str:
    """This process's peak resident memory (the kernel's high-water mark) and, when a GPU
    was used, torch's peak allocation on it: what a container's limits must allow."""
    import torch

    figures = []
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        figures.append(f"peak memory {int(fields['VmHWM'].split()[0]) / 2**20:.2f} GiB")
    except (OSError, KeyError):
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        figures.append(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return ", ".join(figures) or "peak memory unknown"


@click.command("export")
@click.argument("submission", type=click.Path(file_okay=False, exists=True))
@click.option("--out", type=click.Path(file_okay=False), required=True, help="The bundle folder.")
@click.option(
    "--container",
    is_flag=True,
    help="Also write the challenge container's files beside the bundle: Dockerfile, test.sh "
    "(with a small test stack and its expected_output.json) and export.sh.",
)
@click.option(
    "--test-stack",
    type=click.Path(dir_okay=False, exists=True),
    help="With --container: the stack test.sh takes its slices from [default: the "
    "submission's test stack].",
)
@click.option(
    "--test-slices",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="With --container: how many slices test.sh predicts.",
)
def export_command(
    submission: str, out: str, container: bool, test_stack: str | None, test_slices: int
) -> None:
    """Copy what the SUBMISSION's ensemble needs to predict into one self-contained folder
    (weights, model configs, views, fusion weights, checksums): `cephalo predict --bundle`
    runs it with no run folder, dataset or registry at hand."""
    from cephalo.container.bundle import bundle_size, export_bundle, submission_test_stack
    from cephalo.container.image import write_container

    path = export_bundle(submission, out)
    click.echo(f"bundle: {path} ({bundle_size(path) / 1e6:.1f} MB)")
    if container:
        stack = Path(test_stack) if test_stack else submission_test_stack(Path(submission))
        write_container(path, stack, test_slices)
        click.echo(f"container: {path / 'Dockerfile'}; build and check it with {path / 'test.sh'}")
