"""``cephalo.reports.explore`` and ``notebooks/explore_data.py``: the tables agree with the prepared
files, the figures draw what they claim, and the notebook runs under papermill."""

from __future__ import annotations

import ast
import dataclasses
from collections import Counter
from pathlib import Path

import cv2
import jupytext
import nbformat
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from cephalo.data.prepare import prepare_release
from cephalo.data.prepared import load_images
from cephalo.data.synth import synthesize
from cephalo.errors import DataError
from cephalo.notebooks import ParameterError, declared_parameters, execute
from cephalo.paths import NOTEBOOKS
from cephalo.reports import explore

N_IMAGES = 12
N_FOLDS = 3


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explore")
    synthesize(root, N_IMAGES, scale=0.1, seed=1)
    return prepare_release(
        root / "train_stack.mha",
        root / "train-gt.json",
        root / "prepared",
        folds=N_FOLDS,
        progress=False,
    )


@pytest.fixture(scope="module")
def data(dataset_dir: Path) -> explore.Dataset:
    return explore.open_dataset(dataset_dir)


def test_summary_has_one_row_per_group_with_counts_sizes_and_spacings(data, dataset_dir):
    images = load_images(dataset_dir)
    table = explore.summary_table(data)
    counts = Counter(image.group for image in images)
    assert len(counts) > 1, "the fixture should hold several groups"
    assert sorted(table.index) == sorted(counts)
    assert table.images.sum() == N_IMAGES
    varying = set()
    for image in images:
        row = table.loc[image.group]
        assert row.images == counts[image.group]
        assert row.spacing_mm == image.spacing
        for shown, size in ((row.width_px, image.width), (row.height_px, image.height)):
            if isinstance(shown, str):  # a group whose image sizes vary shows their range
                low, high = map(int, shown.split("-"))
                assert low <= size <= high and low < high
                varying.add(image.group)
            else:
                assert shown == size
        assert row.landmarks == 38
    # One synthetic centre's sizes vary like the real Planmeca one's, the others' do not.
    assert 0 < len(varying) < len(counts)


def test_summary_intensity_is_the_pooled_pixel_statistics(data, dataset_dir):
    table = explore.summary_table(data)
    group = table.index[0]
    pixels = np.concatenate(
        [
            cv2.imread(str(dataset_dir / "images" / image.file_name), cv2.IMREAD_GRAYSCALE).ravel()
            for image in load_images(dataset_dir)
            if image.group == group
        ]
    )
    assert table.loc[group, "intensity_mean"] == pytest.approx(pixels.mean(), abs=0.06)
    assert table.loc[group, "intensity_std"] == pytest.approx(pixels.std(), abs=0.06)


def test_fold_balance_counts_every_image_once(data):
    folds = explore.fold_balance(data, "fold")
    assert folds.to_numpy().sum() == N_IMAGES
    assert list(folds.columns) == list(range(N_FOLDS))
    assert list(folds.index) == data.groups
    splits = explore.fold_balance(data, "organiser_split")
    assert splits.to_numpy().sum() == N_IMAGES
    assert set(splits.columns) <= {"train", "val", "test"}


def test_sella_frame_puts_landmark_1_at_the_origin_in_mm(data):
    points = explore.points_mm(data, "sella")
    assert points.shape == (N_IMAGES, 38, 2)
    np.testing.assert_array_equal(points[:, 0], 0.0)
    image = data.images[0]
    pixels = np.linalg.norm(image.points[1] - image.points[0])
    assert np.linalg.norm(points[0, 1]) == pytest.approx(pixels * image.spacing)


def test_rigid_procrustes_removes_pose_and_keeps_size():
    rng = np.random.default_rng(0)
    shape = rng.normal(size=(38, 2)) * 30
    poses = []
    for angle in np.radians([-20, 0, 15, 40]):
        c, s = np.cos(angle), np.sin(angle)
        poses.append(shape @ np.array([[c, -s], [s, c]]).T + rng.normal(size=2) * 50)
    aligned = explore.rigid_procrustes(np.stack(poses))
    np.testing.assert_allclose(aligned, np.broadcast_to(aligned[0], aligned.shape), atol=1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(aligned[0] - aligned[0].mean(axis=0), axis=1),
        np.linalg.norm(shape - shape.mean(axis=0), axis=1),
    )


def test_landmark_table_names_and_spreads(data):
    table = explore.landmark_table(data)
    assert list(table.index) == [str(i) for i in range(1, 39)]
    assert table.loc["1", "name"] == "1 Sella (S)"
    assert table.loc["20", "name"] == "20 basion (Ba; synthetic placement)"
    assert table.loc["1", "spread_sella_mm"] == 0.0
    assert (table.spread_aligned_mm > 0).all()
    assert table.name.str.len().gt(0).all(), "synthetic data name all 38 landmarks"
    # Without the generator's sidecar, the organisers' names for all 38.
    real = dataclasses.replace(data, manifest={**data.manifest, "source": {}})
    assert not explore.is_synthetic(real)
    names = explore.landmark_names(real)
    assert names[19] == "20 Centre of the symphysis (D)" and names[37] == "38 Lower molar (L6)"


def test_examples_figure_draws_n_images_with_every_landmark(data):
    fig = explore.plot_examples(data, n=4, seed=0)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert len([a for a in ax.get_images() if isinstance(a, AxesImage)]) == 1
        (points,) = ax.collections
        assert points.get_offsets().shape == (38, 2)
        numbers = {t.get_text() for t in ax.texts}
        assert {str(i) for i in range(1, 39)} <= numbers
        assert "20 mm" in numbers


def test_examples_come_from_every_group(data):
    picked = explore.pick_examples(data, n=len(data.groups), seed=3)
    assert {image.group for image in picked} == set(data.groups)
    assert len(explore.pick_examples(data, n=100)) == N_IMAGES
    with pytest.raises(ValueError):
        explore.pick_examples(data, n=0)


@pytest.mark.parametrize("frame", ["sella", "procrustes"])
def test_landmark_cloud_shows_every_point_and_the_mean_shape(data, frame):
    fig = explore.plot_landmark_cloud(data, frame)
    (ax,) = fig.axes
    *groups, mean = ax.collections
    assert len(groups) == len(data.groups)
    assert sum(len(c.get_offsets()) for c in groups) == N_IMAGES * 38
    assert mean.get_offsets().shape == (38, 2)
    assert "mm" in ax.get_xlabel() and "mm" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == len(data.groups) + 1


def test_geometry_intensity_and_fold_figures(data):
    for plot in (explore.plot_geometry, explore.plot_intensity, explore.plot_fold_balance):
        fig = plot(data)
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 2
        assert all(ax.get_title() and ax.get_xlabel() for ax in fig.axes)
    histogram_axes = explore.plot_intensity(data).axes[0]
    assert len(histogram_axes.lines) == len(data.groups)
    fold_axes = explore.plot_fold_balance(data).axes[0]
    assert len(fold_axes.patches) == N_FOLDS * len(data.groups)


def test_open_dataset_refuses_a_folder_that_is_not_prepared(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset"):
        explore.open_dataset(tmp_path)


def test_notebook_parameters_cell_is_first_and_plain_literals():
    notebook = jupytext.read(NOTEBOOKS / "explore_data.py")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"]
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(code[0].source).body
        if isinstance(node, ast.Assign)
    }
    assert values == {"dataset_dir": None, "n_examples": 6, "seed": 0}
    # papermill's own parser must read them too (it drops a line it cannot parse).
    for cell in notebook.cells:
        cell.metadata.setdefault("tags", [])  # as papermill's loader does
    assert set(declared_parameters(notebook)) == set(values)
    assert notebook.metadata["kernelspec"]["name"] == "cephalo"


def test_misspelled_notebook_parameter_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="n_examples"):
        execute("explore_data", tmp_path / "explore.ipynb", {"n_exmaples": 3})
    assert not (tmp_path / "explore.ipynb").exists()


@pytest.mark.slow
def test_notebook_runs_under_papermill(dataset_dir, tmp_path):
    output = execute(
        "explore_data",
        tmp_path / "explore.ipynb",
        {"dataset_dir": str(dataset_dir), "n_examples": 3},
    )
    notebook = nbformat.read(output, as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 6  # examples, two landmark clouds, geometry, intensity, folds
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "intensity_mean" in html and "spread_aligned_mm" in html
    # The tables describe the fixture, not the built-in dataset.
    assert all(group in html for group in explore.open_dataset(dataset_dir).groups)
