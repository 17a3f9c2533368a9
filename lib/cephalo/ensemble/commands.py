"""The ensemble commands of the CLI: ``cephalo ensemble`` and ``cephalo predict``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("ensemble")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="The submission folder, e.g. submissions/NAME.",
)
def ensemble_command(spec: str, out: str) -> None:
    """Fuse the members of SPEC (an ensemble file): predict them out-of-fold and on the test
    stack under their TTA views, score every fusion on OOF (learned ones cross-validated),
    and write the chosen fusion's submission to OUT. Resumable (predictions are cached)."""
    from cephalo.ensemble.build import build_ensemble, scores_table
    from cephalo.errors import DataError
    from cephalo.experiments.spec import SpecError

    try:
        manifest = build_ensemble(spec, out)
    except (SpecError, DataError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    columns = ["MRE", "SDR 2.0mm", "SDR 2.5mm", "SDR 3.0mm", "SDR 4.0mm"]
    click.echo("out-of-fold scores (fusions cross-validated over folds):")
    click.echo(scores_table(manifest)[columns].round(3).to_string())
    if "test" in manifest:
        test = manifest["test"]
        click.echo(f"test ({manifest['fusion']}): MRE {test['MRE']:.3f} mm")
    click.echo(f"submission: {Path(out).resolve()}")


@click.command("predict")
@click.option("--stack", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option(
    "--ensemble",
    type=click.Path(file_okay=False, exists=True),
    required=True,
    help="A submission folder written by `cephalo ensemble`.",
)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The JSON to write.")
def predict_command(stack: str, ensemble: str, out: str) -> None:
    """Predict a stacked .mha with a stored ensemble and write the challenge's JSON: what
    the grand-challenge container does (slice by slice, padding cropped, every member with
    its TTA view, fused with the stored weights)."""
    from cephalo.ensemble.build import predict_stack
    from cephalo.errors import DataError

    try:
        path = predict_stack(Path(ensemble), Path(stack), Path(out))
    except (DataError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {path}")
