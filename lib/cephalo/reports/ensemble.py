"""What an ensemble did, for the ensemble notebook and the report: scores of members and
fusions, per-landmark errors, success-rate curves, the fusion's weights, where each
landmark's error goes, and the worst images drawn."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cephalo.challenge.submission import read_submission_manifest
from cephalo.data.prepared import load_images
from cephalo.ensemble.build import OOF_FILE, scores_table
from cephalo.ensemble.fused import tta_effect
from cephalo.ensemble.fusion import per_landmark
from cephalo.landmarks import ANATOMY, LANDMARK_NAMES, landmark_labels
from cephalo.metrics import MRE, radial_errors


class EnsembleResult:
    """A submission folder's manifest and out-of-fold arrays."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.manifest = read_submission_manifest(self.folder)
        with np.load(self.folder / OOF_FILE, allow_pickle=False) as oof:
            self.oof = {key: oof[key] for key in oof.files}

    def scores(self) -> pd.DataFrame:
        return scores_table(self.manifest)

    def verdict(self) -> str:
        """Whether the submitted fusion beats the best single member out-of-fold."""
        scores = self.manifest["oof"]
        members = {n: s[MRE] for n, s in scores.items() if not n.startswith("fusion")}
        best = min(members, key=members.get)
        fused = scores[f"fusion: {self.manifest['fusion']}"][MRE]
        beats = "beats" if fused < members[best] else "DOES NOT beat"
        return (
            f"fusion '{self.manifest['fusion']}' (OOF MRE {fused:.3f} mm, cross-validated) "
            f"{beats} the best member {best} ({members[best]:.3f} mm)"
        )

    def tta_effect(self) -> str | None:
        return tta_effect(self.manifest)

    def errors(self) -> dict[str, np.ndarray]:
        """Name -> (N, K) radial errors in mm: the best member and the submitted fusion."""
        oof = self.oof
        members = {
            str(name): radial_errors(coords, oof["truth"], oof["spacing"])
            for name, coords in zip(oof["members"], oof["coords"], strict=True)
        }
        best = min(members, key=lambda name: members[name].mean())
        fused = radial_errors(oof["fused"], oof["truth"], oof["spacing"])
        return {f"best member: {best}": members[best], f"fusion: {self.manifest['fusion']}": fused}


def landmark_errors(errors: dict[str, np.ndarray]) -> plt.Figure:
    """Mean radial error per landmark, with its standard error, for each entry."""
    figure, axis = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(errors)
    for i, (name, values) in enumerate(errors.items()):
        positions = np.arange(values.shape[1]) + i * width
        sem = values.std(axis=0, ddof=1) / np.sqrt(len(values))
        axis.bar(positions, values.mean(axis=0), width, yerr=sem, capsize=2, label=name)
    axis.set_xticks(
        np.arange(values.shape[1]) + 0.4 - width / 2,
        landmark_labels(LANDMARK_NAMES[: values.shape[1]]),
        rotation=90,
        fontsize=7,
    )
    axis.set(xlabel="landmark", ylabel="MRE (mm)", title="out-of-fold error per landmark")
    axis.legend()
    figure.tight_layout()
    return figure


def sdr_curves(errors: dict[str, np.ndarray], max_mm: float = 10.0) -> plt.Figure:
    """Success detection rate against the threshold, 0 to ``max_mm``."""
    thresholds = np.linspace(0, max_mm, 201)
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, values in errors.items():
        rates = [(values <= t).mean() * 100 for t in thresholds]
        axis.plot(thresholds, rates, label=name)
    for t in (2, 2.5, 3, 4):
        axis.axvline(t, color="grey", linewidth=0.5, linestyle=":")
    axis.set(xlabel="threshold (mm)", ylabel="SDR (%)", title="success rate", ylim=(0, 100))
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def worst_images(result: EnsembleResult, n: int = 4) -> plt.Figure:
    """The ``n`` images the fusion misses most: ground truth (green) and fusion (red)."""
    oof = result.oof
    errors = radial_errors(oof["fused"], oof["truth"], oof["spacing"]).mean(axis=1)
    worst = np.argsort(errors)[::-1][:n]
    dataset = Path(result.manifest["members"][0]["runs"][0]["dataset_dir"])
    images = {i.image_id: i for i in load_images(dataset)}
    figure, axes = plt.subplots(1, len(worst), figsize=(4 * len(worst), 4.5), squeeze=False)
    for axis, i in zip(axes[0], worst, strict=True):
        image = images[int(oof["image_id"][i])]
        pixels = cv2.imread(str(dataset / "images" / image.file_name), cv2.IMREAD_GRAYSCALE)
        axis.imshow(pixels, cmap="gray")
        truth, fused = oof["truth"][i], oof["fused"][i]
        for (x0, y0), (x1, y1) in zip(truth, fused, strict=True):
            axis.plot([x0, x1], [y0, y1], color="yellow", linewidth=0.7)
        axis.scatter(*truth.T, s=8, color="lime", label="ground truth")
        axis.scatter(*fused.T, s=8, color="red", label="fusion")
        axis.set(title=f"image {image.image_id}: MRE {errors[i]:.2f} mm")
        axis.axis("off")
    axes[0, 0].legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return figure


def fusion_weights(result: EnsembleResult) -> plt.Figure:
    """The submitted fusion's weights, member x landmark (a learned fusion's; the greedy
    fusion's are the same for every landmark)."""
    if result.manifest["weights"] is None:
        raise ValueError(f"the fusion {result.manifest['fusion']!r} has no weights")
    n_landmarks = result.oof["truth"].shape[1]
    weights = per_landmark(np.asarray(result.manifest["weights"], dtype=float), n_landmarks)
    members = [m["name"] for m in result.manifest["members"]]
    figure, axis = plt.subplots(figsize=(12, 1.5 + 0.35 * len(members)))
    image = axis.imshow(weights, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axis.set_yticks(np.arange(len(members)), members, fontsize=8)
    axis.set_xticks(
        np.arange(n_landmarks), landmark_labels(LANDMARK_NAMES[:n_landmarks]), rotation=90,
        fontsize=7,
    )  # fmt: skip
    axis.set_title(f"weights of the fusion '{result.manifest['fusion']}' (each column sums to 1)")
    figure.colorbar(image, ax=axis, label="weight", fraction=0.03)
    figure.tight_layout()
    return figure


def error_map(result: EnsembleResult, circle_mm: float = 2.0) -> plt.Figure:
    """Where each landmark's error goes: every image's fused prediction minus its truth (in
    mm), drawn around the landmark's place in the mean shape, magnified so that most errors
    stay near their landmark, with a circle of ``circle_mm`` and an arrow for the mean error
    (a bias the models share)."""
    oof = result.oof
    spacing = oof["spacing"][:, None, None]
    offsets = (oof["fused"] - oof["truth"]) * spacing  # (N, K, 2) mm
    places = (oof["truth"] * spacing).mean(axis=0)  # the mean shape, in mm
    lengths = np.linalg.norm(offsets, axis=-1, keepdims=True)  # the radial errors
    typical = max(float(np.percentile(lengths, 90)), circle_mm)
    zoom = 0.04 * np.ptp(places, axis=0).max() / typical  # 90 % of errors within 4 % of the skull
    reach = 2 * typical  # farther errors are drawn at this distance, in their direction
    shown = offsets * np.minimum(1.0, reach / np.maximum(lengths, 1e-9))
    figure, axis = plt.subplots(figsize=(10, 10))
    for k, place in enumerate(places):
        axis.add_patch(plt.Circle(place, circle_mm * zoom, fill=False, color="grey", lw=0.6))
        axis.scatter(*(place + zoom * shown[:, k]).T, s=3, color="tab:red", alpha=0.4)
        axis.annotate(
            "", place + zoom * offsets[:, k].mean(axis=0), place,
            arrowprops=dict(arrowstyle="->", color="black", lw=0.9),
        )  # fmt: skip
        label = ANATOMY[k][1] if k < len(ANATOMY) else str(k + 1)
        axis.annotate(f"{k + 1} {label}", place, xytext=(5, 5), textcoords="offset points",
                      fontsize=7)  # fmt: skip
    axis.set_aspect("equal")
    axis.invert_yaxis()
    axis.set(
        xlabel="mm",
        ylabel="mm",
        title=f"out-of-fold error of each landmark around the mean shape\n(errors x{zoom:.1f}; "
        f"circle: {circle_mm:g} mm; arrow: mean error; errors beyond {reach:.0f} mm drawn at "
        f"{reach:.0f} mm)",
    )
    figure.tight_layout()
    return figure
