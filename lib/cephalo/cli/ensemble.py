"""The ensemble's command: ``cephalo ensemble``."""

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

    manifest = build_ensemble(spec, out)
    columns = ["MRE", "SDR 2.0mm", "SDR 2.5mm", "SDR 3.0mm", "SDR 4.0mm"]
    click.echo("out-of-fold scores (fusions cross-validated over folds):")
    click.echo(scores_table(manifest)[columns].round(3).to_string())
    if "test" in manifest:
        test = manifest["test"]
        models = manifest["test_models"]
        click.echo(f"test ({manifest['fusion']}, {models} models): MRE {test['MRE']:.3f} mm")
    click.echo(f"submission: {Path(out).resolve()}")
