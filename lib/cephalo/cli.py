"""The ``cephalo`` command line: one entry point, one sub-command per step of the recipe.

Sub-commands import their modules lazily, so ``cephalo --help`` answers at once instead
of after importing torch and OpenMMLab.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cephalo")
def main() -> None:
    """Experiment kit for cephalometric landmark detection (CL-Detection 2023)."""


@main.command()
def doctor() -> None:
    """Check that the environment works: versions, device, MMCV ops, registries, kernel,
    checkpoint loading. Exits non-zero when a check fails."""
    from cephalo.doctor import run_checks

    raise SystemExit(0 if run_checks() else 1)


if __name__ == "__main__":
    main()
