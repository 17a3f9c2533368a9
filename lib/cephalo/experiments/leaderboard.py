"""Leaderboards from the registry: per-variant fold means and spreads, sorted by a metric.

A variant's score is the mean of its held-out folds' metrics, with their standard deviation
as the spread (the fold-to-fold noise a competitor compares differences against). Full fits
have no held-out images and only appear among the runs.
"""

from __future__ import annotations

import pandas as pd

from cephalo.metrics import LEADERBOARD, MRE, lower_is_better
from cephalo.run_states import COMPLETED

BASELINE = "baseline MRE"


def fold_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per completed held-out run: experiment, variant, fold, seconds, the leaderboard
    metrics and the mean-shape baseline's MRE on the same fold."""
    done = runs[(runs["status"] == COMPLETED) & runs["fold"].notna()]
    rows = []
    for run in done.itertuples():
        metrics = run.metrics
        if MRE not in metrics:
            continue
        rows.append(
            dict(
                experiment=run.experiment,
                variant=run.variant,
                fold=int(run.fold),
                seconds=run.seconds,
                **{name: metrics[name] for name in LEADERBOARD},
                **{BASELINE: metrics.get("mean_shape_baseline", {}).get(MRE)},
            )
        )
    return pd.DataFrame(
        rows, columns=["experiment", "variant", "fold", "seconds", *LEADERBOARD, BASELINE]
    )


def leaderboard(runs: pd.DataFrame, metric: str = MRE) -> pd.DataFrame:
    """Per (experiment, variant): folds, mean and std of every metric, sorted by ``metric``."""
    scores = fold_scores(runs)
    grouped = scores.groupby(["experiment", "variant"])
    table = grouped[[*LEADERBOARD, BASELINE]].mean()
    spread = grouped[list(LEADERBOARD)].std(ddof=1)
    table = table.join(spread.add_suffix(" std"))
    table.insert(0, "folds", grouped.size())
    table["minutes"] = grouped["seconds"].sum() / 60
    order = [
        "folds",
        *(c for name in LEADERBOARD for c in (name, f"{name} std")),
        BASELINE,
        "minutes",
    ]
    return table[order].sort_values(metric, ascending=lower_is_better(metric)).reset_index()


def baseline_verdict(table: pd.DataFrame) -> str:
    """One line per variant: its mean fold MRE against the mean-shape baseline's."""
    lines = []
    for _, row in table.iterrows():
        beats = "beats" if row[MRE] < row[BASELINE] else "DOES NOT beat"
        lines.append(
            f"{row['experiment']}/{row['variant']}: MRE {row[MRE]:.2f} mm {beats} the "
            f"mean-shape baseline's {row[BASELINE]:.2f} mm"
        )
    return "\n".join(lines)


def per_landmark(runs: pd.DataFrame) -> pd.DataFrame:
    """Variant x landmark: MRE per landmark averaged over the variant's held-out folds."""
    done = runs[(runs["status"] == COMPLETED) & runs["fold"].notna()]
    rows = {}
    for (experiment, variant), group in done.groupby(["experiment", "variant"]):
        tables = [pd.Series(m["per_landmark"]) for m in group["metrics"] if "per_landmark" in m]
        if tables:
            rows[f"{experiment}/{variant}"] = pd.concat(tables, axis=1).mean(axis=1)
    return pd.DataFrame(rows).T


def status_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs per experiment and status (completed, failed, running)."""
    return runs.groupby(["experiment", "status"]).size().unstack(fill_value=0)


def format_leaderboard(table: pd.DataFrame, metric: str = MRE) -> str:
    """The leaderboard as text, "mean ± std" per metric."""
    if table.empty:
        return "no completed held-out runs yet"
    shown = table[["experiment", "variant", "folds"]].copy()
    for name in LEADERBOARD:
        unit = " mm" if name == MRE else " %"
        shown[name] = [
            f"{m:.2f} ± {s:.2f}{unit}" if pd.notna(s) else f"{m:.2f}{unit}"
            for m, s in zip(table[name], table[f"{name} std"], strict=True)
        ]
    shown[BASELINE] = table[BASELINE].map(lambda v: f"{v:.2f} mm" if pd.notna(v) else "")
    shown["minutes"] = table["minutes"].round(1)
    shown.index = range(1, len(shown) + 1)
    better = "lower" if lower_is_better(metric) else "higher"
    return f"sorted by {metric} ({better} is better)\n" + shown.to_string()
