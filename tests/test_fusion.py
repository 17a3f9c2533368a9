"""TTA views invert exactly; fusions do what they say on synthetic predictions; learned
fusions are scored on images they were not fitted to; submissions validate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cephalo.challenge.points import challenge_json
from cephalo.challenge.submission import validate, write_submission
from cephalo.ensemble import fusion
from cephalo.errors import DataError
from cephalo.landmarks import NUM_LANDMARKS
from cephalo.metrics import radial_errors
from cephalo.predictions import Predictions
from cephalo.tta import IDENTITY, View, parse_view

VIEWS = [
    IDENTITY,
    View(flip=True),
    View(scale=0.9),
    View(scale=1.1, shift=(0.02, -0.03)),
    View(flip=True, scale=0.85, shift=(-0.05, 0.01)),
]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_views_invert_exactly_on_points(view):
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 300, (20, NUM_LANDMARKS, 2))
    there = view.forward(points, 301, 257)
    assert np.abs(view.inverse(there, 301, 257) - points).max() < 1e-9


@pytest.mark.parametrize("view", VIEWS[1:], ids=lambda v: v.name)
def test_views_move_image_content_where_forward_says(view):
    """A bright dot drawn in the image ends up where forward() maps its centre."""
    width, height = 201, 161
    image = np.zeros((height, width, 3), np.uint8)
    x, y = 70, 60
    image[y - 2 : y + 3, x - 2 : x + 3] = 255
    warped = view.apply(image)[..., 0].astype(float)
    ys, xs = np.nonzero(warped > 0)
    centre = np.array(
        [np.average(xs, weights=warped[ys, xs]), np.average(ys, weights=warped[ys, xs])]
    )
    expected = view.forward(np.array([x, y], float), width, height)
    assert np.abs(centre - expected).max() < 0.3


def test_flip_is_the_mirror_about_the_pixel_centres():
    assert np.allclose(
        View(flip=True).forward(np.array([[0.0, 5.0], [9.0, 1.0]]), 10, 8), [[9, 5], [0, 1]]
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ({"scale": 3}, "outside"),
        ({"zoom": 2}, "unknown keys"),
        ("mirror", "not a TTA view"),
        ({"shift": [0.5, 0]}, "quarter"),
    ],
)
def test_bad_views_are_named(value, message):
    with pytest.raises(ValueError, match=message):
        parse_view(value)


def _members(rng, truth, biases, noise):
    """Members = truth + a per-member, per-landmark bias + noise (px)."""
    return np.stack(
        [truth + bias[None, :, :] + rng.normal(0, noise, truth.shape) for bias in biases]
    )


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    n, k = 60, NUM_LANDMARKS
    truth = rng.uniform(50, 250, (n, k, 2))
    spacing = np.full(n, 0.1)
    # Two members, each good on half the landmarks and biased on the other half.
    bias_a = np.zeros((k, 2))
    bias_a[: k // 2] = 15
    bias_b = np.zeros((k, 2))
    bias_b[k // 2 :] = -15
    coords = _members(rng, truth, [bias_a, bias_b, bias_a * 0.5 + bias_b * 0.5], noise=4)
    folds = np.arange(n) % 5
    return coords, truth, spacing, folds


def _mre(coords, truth, spacing):
    return radial_errors(coords, truth, spacing).mean()


def test_learned_weights_beat_every_member_cross_validated(problem):
    coords, truth, spacing, folds = problem
    singles = [_mre(c, truth, spacing) for c in coords]
    honest = fusion.cross_validated("learned", coords, truth, spacing, folds)
    assert _mre(honest, truth, spacing) < 0.7 * min(singles)
    weights = fusion.fit_learned(coords, truth, spacing)
    assert weights.shape == (3, NUM_LANDMARKS)
    assert np.all(weights >= 0) and np.allclose(weights.sum(axis=0), 1)
    # member 0 is unbiased on the second half of the landmarks, member 1 on the first
    assert weights[0, -1] > 0.5 and weights[1, 0] > 0.5


def test_a_view_that_hurts_gets_no_weight(problem):
    """A TTA view the members were not trained for (a flip of a model that never saw a
    mirrored face puts landmarks at their mirror positions): the learned fusion leaves it out
    and scores as well as without it."""
    coords, truth, spacing, folds = problem
    mirrored = coords[:1].copy()
    mirrored[..., 0] = 300 - mirrored[..., 0]
    with_view = np.concatenate([coords, mirrored])
    weights = fusion.fit_learned(with_view, truth, spacing)
    assert weights[-1].max() < 0.02
    without = fusion.cross_validated("learned", coords, truth, spacing, folds)
    honest = fusion.cross_validated("learned", with_view, truth, spacing, folds)
    assert _mre(honest, truth, spacing) <= 1.02 * _mre(without, truth, spacing)


def test_cross_validation_does_not_score_on_fitted_images():
    """Pure-noise members: fitting and scoring on the same images looks better than chance;
    cross-validated it does not."""
    rng = np.random.default_rng(2)
    truth = rng.uniform(0, 100, (10, NUM_LANDMARKS, 2))
    spacing = np.ones(10)
    coords = truth[None] + rng.normal(0, 5, (8, 10, NUM_LANDMARKS, 2))
    folds = np.arange(10) % 5
    in_sample = fusion.apply_weights(coords, fusion.fit_learned(coords, truth, spacing))
    honest = fusion.cross_validated("learned", coords, truth, spacing, folds)
    assert _mre(honest, truth, spacing) > _mre(in_sample, truth, spacing)


def test_greedy_selection_prefers_the_complementary_pair(problem):
    coords, truth, spacing, _ = problem
    weights = fusion.fit_greedy(coords, truth, spacing, rounds=10)
    assert weights.shape == (3,) and np.isclose(weights.sum(), 1) and np.all(weights >= 0)
    assert _mre(fusion.apply_weights(coords, weights), truth, spacing) <= min(
        _mre(c, truth, spacing) for c in coords
    )


def test_fixed_fusions():
    truth = np.zeros((1, 1, 2))
    coords = np.array([[[[0.0, 0.0]]], [[[2.0, 0.0]]], [[[100.0, 0.0]]]])
    assert fusion.fuse_fixed(coords, "mean")[0, 0, 0] == pytest.approx(34)
    assert fusion.fuse_fixed(coords, "median")[0, 0, 0] == 2
    assert fusion.fuse_fixed(coords, "robust")[0, 0, 0] == pytest.approx(1)  # the outlier goes
    confidence = np.array([[[1.0]], [[1.0]], [[0.0]]])
    assert fusion.fuse_fixed(coords, "confidence", confidence)[0, 0, 0] == pytest.approx(
        1, abs=1e-3
    )
    with pytest.raises(ValueError, match="unknown fusion"):
        fusion.fuse_fixed(coords, "vote")
    assert truth.shape == (1, 1, 2)


def _submission(tmp_path, coords=None):
    slices = np.array([1, 2])
    sizes = np.array([[100, 80], [120, 90]])
    coords = np.full((2, NUM_LANDMARKS, 2), 40.0) if coords is None else coords
    return write_submission(tmp_path / "sub", slices, coords, sizes, dict(members=[]))


def test_submission_files_and_manifest(tmp_path):
    folder = _submission(tmp_path)
    data = json.loads((folder / "predictions.json").read_text())
    assert data["type"] == "Multiple points" and len(data["points"]) == 2 * NUM_LANDMARKS
    assert data["points"][NUM_LANDMARKS]["point"][2] == 2  # z is the 1-based slice
    rows = (folder / "predictions.csv").read_text().splitlines()
    assert rows[0] == "image,landmark,x,y" and len(rows) == 1 + 2 * NUM_LANDMARKS
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"versions", "commit", "members"} <= set(manifest)
    assert "torch" in manifest["versions"]


def test_validator_names_bad_points(tmp_path):
    coords = np.full((2, NUM_LANDMARKS, 2), 40.0)
    coords[1, 5] = [119.6, 10]  # beyond the 120-wide image
    with pytest.raises(DataError, match=r"z=2, landmark '6'.*outside the 120x90 image"):
        _submission(tmp_path, coords)
    assert not (tmp_path / "sub" / "manifest.json").exists()  # no manifest: not complete

    path = tmp_path / "partial.json"
    data = challenge_json(np.array([1, 2]), np.full((2, NUM_LANDMARKS, 2), 40.0))
    data["points"] = data["points"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"z=2 lacks 1 landmark"):
        validate(path, [1, 2], np.array([[100, 80], [120, 90]]))
    path.write_text(json.dumps(challenge_json(np.array([1]), np.full((1, NUM_LANDMARKS, 2), 4.0))))
    with pytest.raises(DataError, match=r"slices \[2\] missing"):
        validate(path, [1, 2], np.array([[100, 80], [120, 90]]))


def _member(view, point, width, height, input_size, bins, kind="simcc", sigma=3.0):
    """A member whose raw outputs are Gaussians at ``point`` (original pixels) as ``view``
    shows it, on a whole-image crop of an ``input_size`` model with ``bins`` per axis."""
    from cephalo.predictions import Predictions

    scale = np.array([width, height * input_size[0] / input_size[1]], float)
    scale = np.maximum(scale, [height * input_size[0] / input_size[1], height])[None]  # aspect
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    seen = view.forward(np.asarray(point, float), width, height)
    profiles = []
    for axis in (0, 1):
        j = np.arange(bins[axis])
        px = j * input_size[axis] / bins[axis] * scale[0, axis] / input_size[axis]
        px = px + centre[0, axis] - scale[0, axis] / 2
        profiles.append(np.exp(-((px - seen[axis]) ** 2) / (2 * sigma**2)))
    common = dict(
        image_id=np.array([1]),
        coords=np.zeros((1, 1, 2)),
        confidence=np.ones((1, 1)),
        spacing=np.array([0.1]),
        image_size=np.array([[width, height]]),
        input_center=centre,
        input_scale=scale,
        input_size=np.array(input_size),
    )
    if kind == "simcc":
        raw = {
            f"simcc_{a}": (np.log(p + 1e-30) / 10)[None, None]
            for a, p in zip("xy", profiles, strict=True)
        }
    else:
        raw = {"heatmaps": (profiles[1][:, None] * profiles[0][None, :])[None, None]}
    return Predictions(**common, raw=raw)


def test_distribution_fusion_brings_views_and_models_into_one_frame():
    from cephalo.ensemble.distribution import fuse_distributions

    width, height, point = 300, 240, (201.3, 77.6)
    members = [
        (_member(IDENTITY, point, width, height, (128, 128), (256, 256)), IDENTITY),
        (_member(View(flip=True), point, width, height, (128, 128), (256, 256)), View(flip=True)),
        (_member(View(scale=0.9), point, width, height, (96, 96), (240, 240)), View(scale=0.9)),
        (
            _member(
                View(shift=(0.03, 0)),
                point,
                width,
                height,
                (128, 128),
                (32, 32),
                "heatmaps",
                sigma=6.0,
            ),
            View(shift=(0.03, 0)),
        ),
    ]
    fused = fuse_distributions(members)
    assert fused.shape == (1, 1, 2)
    assert np.abs(fused[0, 0] - point).max() < 0.3
    # a member alone decodes to the same point too
    alone = fuse_distributions(members[1:2])
    assert np.abs(alone[0, 0] - point).max() < 0.3


def test_ensemble_spec_errors(tmp_path):
    from cephalo.ensemble.spec import read_ensemble_spec
    from cephalo.experiments.spec import SpecError

    spec = tmp_path / "e.yaml"
    spec.write_text(json.dumps(dict(members=[{"experiment": "x"}], tta=["mirror"])))
    with pytest.raises(SpecError, match="not a TTA view"):
        read_ensemble_spec(spec)
    spec.write_text(json.dumps(dict(memebers=[])))
    with pytest.raises(SpecError, match="did you mean 'members'"):
        read_ensemble_spec(spec)


@pytest.mark.parametrize(
    "params",
    [
        dict(model="rtmpose-m", input_size=(512, 512)),  # the organisers' SimCC
        dict(model="rtmpose-t", input_size=(256, 192), simcc_split_ratio=2.4),
        dict(model="hrnet-w48", input_size=(512, 512), sigma=4.0, dark=False),  # organisers'
        dict(model="hrnet-w48", input_size=(256, 256), heatmap_stride=1, sigma=1.5),  # winner's
        dict(model="hrnet-w32", input_size=(256, 192)),  # MSRA with DARK at stride 4
        dict(model="hrnet-w32", input_size=(256, 192), codec="udp"),
    ],
    ids=["simcc-organiser", "simcc-2.4", "msra-organiser", "dark-stride1", "dark", "udp"],
)
def test_a_member_fused_with_itself_decodes_to_its_own_keypoints(params):
    """Each codec's outputs, as MMPose's own codec encodes them, fused alone: the fusion's
    grid must put every bin where that codec's decoder does."""
    from mmpose.registry import KEYPOINT_CODECS

    import cephalo.mmpose_plugins  # noqa: F401  (BoundedDarkHeatmap)
    from cephalo.ensemble.distribution import fuse_distributions
    from cephalo.models import network
    from cephalo.models.params import parse_params

    resolved = parse_params(params)
    codec = KEYPOINT_CODECS.build(network.codec(resolved))
    width, height = resolved.input_size
    rng = np.random.default_rng(0)
    points = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height], (1, 5, 2))
    encoded = codec.encode(points, np.ones((1, 5)))
    if resolved.family == "rtmpose":
        x, y = encoded["keypoint_x_labels"], encoded["keypoint_y_labels"]  # (1, K, bins)
        decoded, _ = codec.decode(x, y)
        raw = dict(simcc_x=x, simcc_y=y)
    else:
        decoded, _ = codec.decode(encoded["heatmaps"])
        key = "udp_heatmaps" if network.uses_udp(resolved) else "heatmaps"
        raw = {key: encoded["heatmaps"][None]}
    # an image twice the input's size, framed exactly by the crop
    centre, scale = np.array([[width, height]], float), np.array([[2 * width, 2 * height]], float)
    in_image = decoded / [width, height] * scale[:, None] + centre[:, None] - scale[:, None] / 2
    member = Predictions(
        image_id=np.array([1]),
        coords=in_image,
        confidence=np.ones((1, 5)),
        spacing=np.array([0.1]),
        image_size=np.array([[2 * width, 2 * height]]),
        input_center=centre,
        input_scale=scale,
        input_size=np.array([width, height]),
        raw=raw,
    )
    fused = fuse_distributions([(member, IDENTITY)])
    # within a tenth of an input pixel (two image pixels here), as float16 allows
    np.testing.assert_allclose(fused, in_image, atol=0.2)
