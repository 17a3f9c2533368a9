"""The data commands: ``cephalo data synth``, ``data prepare`` (the release) and ``data
prepare-isbi`` (the ISBI 2015 dataset)."""

from __future__ import annotations

from collections.abc import Callable

import click


def _dataset_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every ``prepare`` command shares: the output and how folds are made."""
    for option in reversed(
        [
            click.option(
                "--out",
                type=click.Path(file_okay=False),
                required=True,
                help="The prepared dataset folder to write.",
            ),
            click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True),
            click.option(
                "--seed", type=int, default=2023, show_default=True, help="Fold assignment seed."
            ),
            click.option("--force", is_flag=True, help="Redo a dataset that is already prepared."),
        ]
    ):
        command = option(command)
    return command


@click.group()
def data() -> None:
    """Data: the synthetic release, and preparing a release for training."""


@data.command()
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--n-images", type=click.IntRange(min=1), required=True, help="Training images.")
@click.option(
    "--n-test",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Test images (test_stack.mha + test-gt.json).",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.01, max=1.0),
    default=1.0,
    show_default=True,
    help="Shrink factor; the spacing grows by 1/scale.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def synth(out: str, n_images: int, n_test: int, scale: float, seed: int) -> None:
    """Write a synthetic CL-Detection 2023 release (train_stack.mha + train-gt.json)."""
    from cephalo.data.synth import synthesize

    written = synthesize(out, n_images, n_test=n_test, scale=scale, seed=seed, progress=True)
    for split, files in written.items():
        click.echo(f"{split}: {files.stack} {files.gt}")


@data.command()
@click.option(
    "--stack",
    type=click.Path(dir_okay=False),
    required=True,
    help="The release stack, e.g. train_stack.mha.",
)
@click.option(
    "--gt",
    type=click.Path(dir_okay=False),
    required=True,
    help="Its ground truth, e.g. train-gt.json.",
)
@click.option(
    "--groups",
    type=click.Path(dir_okay=False),
    default=None,
    help="A sidecar naming each slice's centre ({'images': [{'z': 1, 'centre': 'A'}, ...]}, "
    "e.g. train-meta.json) to stratify folds by; default: each image's spacing.",
)
@_dataset_options
def prepare(
    stack: str, gt: str, groups: str | None, out: str, folds: int, seed: int, force: bool
) -> None:
    """Crop, convert and annotate a release stack for training, with stratified folds."""
    from cephalo.data.prepare import prepare_release

    path = prepare_release(stack, gt, out, folds=folds, seed=seed, force=force, groups=groups)
    click.echo(f"prepared: {path}")


@data.command("prepare-isbi")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    required=True,
    help="The ISBI 2015 folder (holding RawImage/ and AnnotationsByMD/).",
)
@click.option(
    "--subset",
    "subsets",
    type=click.Choice(["train", "test1", "test2"]),
    multiple=True,
    default=["train", "test1", "test2"],
    show_default=True,
)
@click.option(
    "--annotator",
    type=click.Choice(["mean", "senior", "junior"]),
    default="mean",
    show_default=True,
    help="Whose landmarks; mean averages both doctors.",
)
@_dataset_options
def prepare_isbi(
    root: str,
    out: str,
    subsets: tuple[str, ...],
    annotator: str,
    folds: int,
    seed: int,
    force: bool,
) -> None:
    """Convert the ISBI 2015 set (19 landmarks, 0.1 mm) into the same prepared format."""
    from cephalo.data.isbi import prepare_isbi

    path = prepare_isbi(
        root, out, subsets=subsets, annotator=annotator, folds=folds, seed=seed, force=force
    )
    click.echo(f"prepared: {path}")
