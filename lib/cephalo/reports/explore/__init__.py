"""Exploring a prepared dataset: the tables and figures of ``notebooks/explore_data.py``.

Why: before training, a competitor wants to see what the data hold (acquisition groups, how
their sizes, spacings and contrast differ, where the landmarks sit and how much they vary,
and whether the folds mix the groups evenly). Computing all of it here keeps the notebook a
list of calls, lets the tests check the numbers, and lets any other notebook reuse a figure.

Every plotting function takes a :class:`Dataset` and returns a ``matplotlib.figure.Figure``
built without pyplot: nothing is shown or kept in global state, so the caller decides
(a notebook displays it, a script saves it). Images are read one at a time; intensities are
kept as one 256-bin histogram per image, exact and a few kilobytes whatever the image size.
"""

from cephalo.reports.explore.dataset import (
    Dataset,
    fold_balance,
    image_table,
    is_synthetic,
    landmark_names,
    landmark_table,
    open_dataset,
    overview,
    pick_examples,
    points_mm,
    rigid_procrustes,
    summary_table,
)
from cephalo.reports.explore.figures import (
    plot_examples,
    plot_fold_balance,
    plot_geometry,
    plot_intensity,
    plot_landmark_cloud,
)

__all__ = [
    "Dataset",
    "fold_balance",
    "image_table",
    "is_synthetic",
    "landmark_names",
    "landmark_table",
    "open_dataset",
    "overview",
    "pick_examples",
    "plot_examples",
    "plot_fold_balance",
    "plot_geometry",
    "plot_intensity",
    "plot_landmark_cloud",
    "points_mm",
    "rigid_procrustes",
    "summary_table",
]
