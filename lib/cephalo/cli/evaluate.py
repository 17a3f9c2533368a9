"""The evaluation command: ``cephalo evaluate``, a prediction file scored with the challenge
metric (:mod:`cephalo.challenge.evaluate`)."""

from __future__ import annotations

import json

import click

from cephalo.challenge import evaluate


@click.command("evaluate")
@click.option(
    "--pred",
    type=click.Path(dir_okay=False),
    required=True,
    help="Predictions in the challenge's JSON format ('Multiple points').",
)
@click.option(
    "--gt",
    type=click.Path(dir_okay=False),
    required=True,
    help="Ground truth in the release's format, e.g. train-gt.json.",
)
@click.option(
    "--meta",
    type=click.Path(dir_okay=False),
    default=None,
    help="Sidecar naming each slice's centre (e.g. train-meta.json): adds per-centre rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, not tables.")
def evaluate_command(pred: str, gt: str, meta: str | None, as_json: bool) -> None:
    """Score a prediction file with the challenge metric (MRE, SDR 2.0-4.0 mm), overall,
    per landmark and per group of images."""
    report = evaluate.evaluate_files(pred, gt, groups=meta)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1, allow_nan=False))
    else:
        click.echo(evaluate.format_report(report))
