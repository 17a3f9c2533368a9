"""The synthetic release: exact CL-Detection 2023 format, believable anatomy, determinism."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from cephalo.data import release, synth
from cephalo.landmarks import LANDMARK_NAMES, NUM_LANDMARKS

SCALE = 0.1
SEED = 7
N_TRAIN, N_TEST = 9, 3
L = {abbr: i for i, (abbr, _, _) in enumerate(synth.LANDMARKS)}
CENTRES = {c.name: c for c in synth.CENTRES}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, synth.SplitFiles]:
    out = tmp_path_factory.mktemp("synth")
    return synth.synthesize(out, n_images=N_TRAIN, n_test=N_TEST, scale=SCALE, seed=SEED)


@pytest.fixture(scope="module")
def train(files: dict[str, synth.SplitFiles]) -> dict:
    """The train split read back: slices, GT records, meta."""
    split = files["train"]
    stack = sitk.GetArrayFromImage(sitk.ReadImage(str(split.stack)))
    meta = json.loads(split.meta.read_text())["images"]
    return dict(stack=stack, gt=release.read_gt(split.gt), meta=meta)


def test_stack_is_the_release_format(files: dict[str, synth.SplitFiles]) -> None:
    assert set(files) == {"train", "test"}
    padded_hw = synth.padded_size(SCALE)
    assert padded_hw == (240, 288)
    for name, n in (("train", N_TRAIN), ("test", N_TEST)):
        split = files[name]
        assert split.stack.name == f"{name}_stack.mha" and split.gt.name == f"{name}-gt.json"
        image = sitk.ReadImage(str(split.stack))
        assert image.GetSize() == (padded_hw[1], padded_hw[0], n)
        assert image.GetNumberOfComponentsPerPixel() == 3
        assert image.GetPixelID() == sitk.sitkVectorUInt8
        assert release.stack_info(split.stack) == (n, *padded_hw)
        header = split.stack.read_bytes()[:600].split(b"ElementDataFile = LOCAL\n")[0].decode()
        for line in (
            "NDims = 3",
            "CompressedData = False",
            "ElementNumberOfChannels = 3",
            "ElementType = MET_UCHAR",
            f"DimSize = {padded_hw[1]} {padded_hw[0]} {n}",
        ):
            assert line in header.splitlines()
        # Uncompressed: header plus exactly the pixels.
        assert split.stack.stat().st_size == len(header) + 24 + n * padded_hw[0] * padded_hw[1] * 3
    assert not list(files["train"].stack.parent.glob(".*.tmp"))


def test_streaming_read_equals_full_read(files: dict[str, synth.SplitFiles], train: dict) -> None:
    for k in range(N_TRAIN):
        one = release.read_slice(files["train"].stack, k)
        assert one.dtype == np.uint8 and one.shape == (240, 288, 3)
        np.testing.assert_array_equal(one, train["stack"][k])
    with pytest.raises(IndexError):
        release.read_slice(files["train"].stack, N_TRAIN)


def test_greyscale_padding_and_sizes(train: dict) -> None:
    for k, info in enumerate(train["meta"]):
        assert info["z"] == k + 1
        centre = CENTRES[info["centre"]]
        h, w = info["height"], info["width"]
        jitter = centre.size_jitter * SCALE + 1  # 1: rounding
        assert abs(h - centre.height * SCALE) <= centre.height * jitter
        assert abs(w - centre.width * SCALE) <= centre.width * jitter
        if not centre.size_jitter:
            assert (h, w) == (round(centre.height * SCALE), round(centre.width * SCALE))
        image = train["stack"][k]
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        assert not image[h:].any() and not image[:, w:].any()
        assert image[:h, :w].min() >= 1  # the padding is the only zero
        assert release.unpadded_size(image) == (h, w)


def test_ground_truth_entries(files: dict[str, synth.SplitFiles], train: dict) -> None:
    entries = json.loads(files["train"].gt.read_text())["points"]
    assert len(entries) == N_TRAIN * NUM_LANDMARKS
    for i, entry in enumerate(entries):
        assert set(entry) == {"name", "point", "scale"}
        assert entry["name"] == LANDMARK_NAMES[i % NUM_LANDMARKS]
        assert entry["point"][2] == i // NUM_LANDMARKS + 1 and isinstance(entry["point"][2], int)
    assert [r.z for r in train["gt"]] == list(range(1, N_TRAIN + 1))
    for record, info in zip(train["gt"], train["meta"], strict=True):
        assert record.points.shape == (NUM_LANDMARKS, 2)
        x, y = record.points.T
        assert (x >= 0).all() and (x <= info["width"] - 1).all()
        assert (y >= 0).all() and (y <= info["height"] - 1).all()
        # Sub-pixel floats, not rounded pixels.
        assert (record.points != np.round(record.points)).any()


def test_spacing_follows_the_centre(train: dict) -> None:
    # The real release's three spacings (its notes: 0.1, 0.096 and about 0.125 mm).
    assert {c.spacing for c in synth.CENTRES} == {0.1, 0.096, 0.125}
    for record, info in zip(train["gt"], train["meta"], strict=True):
        expected = CENTRES[info["centre"]].spacing / SCALE
        assert record.spacing == pytest.approx(expected) == info["spacing"]
    assert {round(r.spacing, 6) for r in train["gt"]} <= {1.0, 0.96, 1.25}


def test_one_centre_varies_its_image_size_like_the_real_one() -> None:
    sizes: dict[str, list] = {name: [] for name in CENTRES}
    for index in range(60):
        image = synth.generate_image(SEED, 0, index, 0.05)
        sizes[image.centre].append(image.image.shape)
    varying = [name for name, shapes in sizes.items() if len(set(shapes)) > 1]
    assert varying == ["B"], sizes
    assert len(set(sizes["B"])) >= 0.8 * len(sizes["B"])  # nearly every image its own size
    height, width = synth.padded_size(0.05)
    assert all(h <= height and w <= width for h, w in sizes["B"])


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    a = synth.synthesize(tmp_path / "a", 3, n_test=1, scale=SCALE, seed=1)
    b = synth.synthesize(tmp_path / "b", 3, n_test=1, scale=SCALE, seed=1)
    c = synth.synthesize(tmp_path / "c", 3, n_test=1, scale=SCALE, seed=2)
    for split in ("train", "test"):
        for kind in ("stack", "gt", "meta"):
            first = getattr(a[split], kind).read_bytes()
            assert first == getattr(b[split], kind).read_bytes()
            assert first != getattr(c[split], kind).read_bytes()


def test_images_do_not_depend_on_how_many(train: dict) -> None:
    for k in (0, N_TRAIN - 1):
        one = synth.generate_image(SEED, 0, k, SCALE)
        h, w = one.image.shape
        np.testing.assert_array_equal(train["stack"][k][:h, :w, 0], one.image)
        np.testing.assert_array_equal(train["gt"][k].points, one.points)


def test_test_split_has_other_images(files: dict[str, synth.SplitFiles], train: dict) -> None:
    test_gt = release.read_gt(files["test"].gt)
    for k, record in enumerate(test_gt):
        assert not np.allclose(record.points, train["gt"][k].points)
        assert not np.array_equal(release.read_slice(files["test"].stack, k), train["stack"][k])


def _mm(records: list[release.ImageLandmarks]) -> np.ndarray:
    return np.stack([r.points * r.spacing for r in records])


def test_shapes_vary_beyond_pose(train: dict) -> None:
    """After removing position, size and rotation (Procrustes), the shapes still differ."""
    shapes = _mm(train["gt"])
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    ref = centred[0] / np.linalg.norm(centred[0])
    residuals = []
    for shape in centred[1:]:
        u, s, vt = np.linalg.svd(shape.T @ ref)
        aligned = shape @ (u @ vt) * (s.sum() / (shape**2).sum())
        residuals.append(np.sqrt(((aligned - ref) ** 2).sum(axis=1).mean()))
    # The reference is normalised to unit size; scale back to mm with its norm.
    residual_mm = np.array(residuals) * np.linalg.norm(centred[0])
    assert residual_mm.min() > 0.5
    assert shapes[:, L["S"]].std(axis=0).min() > 1.0  # the pose moves the head too


def test_landmarks_are_anatomically_ordered(train: dict) -> None:
    """Face looks right (+x anterior), +y is down."""
    for points in _mm(train["gt"]):
        x = {k: points[i, 0] for k, i in L.items()}
        y = {k: points[i, 1] for k, i in L.items()}
        assert x["Po"] < x["S"] < x["N"] < x["Prn"]
        assert y["G"] < y["N"] < y["ANS"] < y["UIE"] < y["Me"] < y["sMe"]
        assert y["S"] < y["Me"] and x["S"] < x["Me"]
        assert x["PNS"] < x["A"] < x["ANS"] < x["Sn"] < x["Prn"]
        assert x["B"] < x["Pog"] < x["sPog"]
        assert x["Go"] < x["Me"] and y["Ar"] < y["Go"] < y["Me"]
        assert x["Ba"] < x["Ar"] < x["PNS"]
        assert x["Po"] < x["Or"] and abs(y["Or"] - y["Po"]) < 15
        assert max(x["UL"], x["LL"]) > x["Sto"]
        assert y["UIA"] < y["UIE"] and y["LIE"] < y["LIA"]
        assert y["Pc"] < y["S"]


def test_anatomy_is_drawn_where_the_landmarks_are(train: dict) -> None:
    def patch(image: np.ndarray, at: np.ndarray, r: int = 1) -> np.ndarray:
        x, y = np.rint(at).astype(int)
        return image[y - r : y + r + 1, x - r : x + r + 1].astype(np.float64)

    for k, record in enumerate(train["gt"]):
        image = train["stack"][k][..., 0]
        pts, mm = record.points, 1.0 / record.spacing
        for i, at in enumerate(pts):
            assert patch(image, at, 4).std() > 3.0, f"image {k + 1}: blank at landmark {i + 1}"
        # Symphysis (bone) > chin soft tissue > air in front of the chin.
        bone = patch(image, pts[[L["B"], L["Pog"], L["Me"], L["LIA"]]].mean(axis=0)).mean()
        soft = patch(image, (pts[L["Pog"]] + pts[L["sPog"]]) / 2).mean()
        air = patch(image, pts[L["sPog"]] + [6 * mm, 0]).mean()
        assert bone > soft + 10 > air + 20, (k, bone, soft, air)


def test_scale_keeps_millimetres() -> None:
    small, large = (synth.generate_image(3, 0, 2, scale) for scale in (0.1, 0.2))
    assert small.centre == large.centre
    assert small.spacing == pytest.approx(2 * large.spacing)
    assert abs(large.image.shape[0] - 2 * small.image.shape[0]) <= 1
    np.testing.assert_allclose(small.points * small.spacing, large.points * large.spacing, atol=1.5)
    with pytest.raises(ValueError):
        synth.generate_image(3, 0, 2, 0.0)


def test_full_scale_image() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. NaN from the exposure curve
        full = synth.generate_image(0, 0, 3, 1.0)
    centre = CENTRES[full.centre]
    height, width = full.image.shape
    assert full.image.dtype == np.uint8 and (height, width) <= synth.PADDED_HW
    if not centre.size_jitter:
        assert (height, width) == (centre.height, centre.width)
    assert full.spacing == centre.spacing
    assert full.image.min() >= 1
    assert (full.points >= 0).all() and (full.points < [width, height]).all()


def test_gt_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = [
        release.ImageLandmarks(
            z=z, points=rng.uniform(0, 2880, (NUM_LANDMARKS, 2)) / 3, spacing=spacing
        )
        for z, spacing in ((1, 0.1), (2, 0.125), (3, 0.1 / 0.3))
    ]
    records[0].points[0] = 0.1 + 0.2, 1e-7
    back = release.read_gt(release.write_gt(tmp_path / "gt.json", records))
    assert len(back) == len(records)
    for a, b in zip(records, back, strict=True):
        assert a.z == b.z and a.spacing == b.spacing
        np.testing.assert_array_equal(a.points, b.points)
    assert not list(tmp_path.glob(".*.tmp"))


def _gt(points: list) -> dict:
    return {"points": points}


def _entries(z: int = 1) -> list[dict]:
    return [{"name": n, "point": [1.0, 2.0, z], "scale": 0.1} for n in LANDMARK_NAMES]


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"points": {}},
        _gt([{"name": "1", "point": [1, 2, 1]}]),
        _gt([{"name": "1", "point": [1, 2], "scale": 0.1}]),
        _gt([{"name": "39", "point": [1, 2, 1], "scale": 0.1}]),
        _gt([{"name": "1", "point": [1, 2, 1.5], "scale": 0.1}]),
        _gt([{"name": "1", "point": ["1", 2, 1], "scale": 0.1}]),
        _gt(_entries()[:-1]),
        _gt([*_entries(), _entries()[0]]),
        _gt([*_entries()[:-1], {**_entries()[-1], "scale": 0.125}]),
    ],
)
def test_read_gt_refuses_malformed_structure(tmp_path: Path, data: object) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError):
        release.read_gt(path)


def test_write_stack_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "stack.mha"

    def failing():
        yield np.ones((4, 5, 3), np.uint8)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        release.write_stack(path, failing(), (6, 7), n_slices=2)
    with pytest.raises(ValueError):
        release.write_stack(path, [np.ones((4, 5), np.uint8)], (6, 7), n_slices=2)
    with pytest.raises(ValueError):
        release.write_stack(path, [np.ones((8, 5), np.uint8)], (6, 7))
    assert list(tmp_path.iterdir()) == []
    release.write_stack(path, [np.full((4, 5), 9, np.uint8)], (6, 7))
    one = release.read_slice(path, 0)
    assert one.shape == (6, 7, 3) and (one[:4, :5] == 9).all() and not one[4:].any()


def test_the_synth_command_shows_its_progress(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cephalo.cli import main

    out = tmp_path / "raw"
    result = CliRunner().invoke(
        main, ["data", "synth", "--out", str(out), "--n-images", "3", "--n-test", "2",
               "--scale", "0.05"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "train images: 100%" in result.output and "3/3" in result.output
    assert "test images: 100%" in result.output and "2/2" in result.output
    assert f"train: {out / 'train_stack.mha'}" in result.output
