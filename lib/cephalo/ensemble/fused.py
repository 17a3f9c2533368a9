"""The members' predictions fused: each member's models averaged, then a fixed rule, the
learned weights or the distributions; out of fold, learned fusions cross-validated."""

from __future__ import annotations

from typing import Any

import numpy as np

from cephalo.challenge.submission import clip_to_images
from cephalo.ensemble import fusion
from cephalo.ensemble.distribution import fuse_distributions
from cephalo.ensemble.members import Member
from cephalo.metrics import MRE
from cephalo.predictions import Predictions


def member_coords(predictions: list[list[Predictions]]) -> tuple[np.ndarray, np.ndarray]:
    """(M, N, K, 2) coordinates and (M, N, K) confidences, each member's fold models
    averaged."""
    coords = np.stack([np.mean([p.coords for p in parts], axis=0) for parts in predictions])
    confidence = np.stack([np.mean([p.confidence for p in parts], axis=0) for parts in predictions])
    return coords, confidence


def fuse(
    method: str,
    members: list[Member],
    predictions: list[list[Predictions]],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(N, K, 2): the members' predictions (per member, one per fold model) fused by
    ``method`` (learned methods apply ``weights``), clipped to the images."""
    sizes = predictions[0][0].image_size
    if method == fusion.DISTRIBUTION:
        entries, shares = [], []
        for member, parts in zip(members, predictions, strict=True):
            entries += [(p, member.view) for p in parts]
            shares += [1 / (len(members) * len(parts))] * len(parts)
        return clip_to_images(fuse_distributions(entries, np.array(shares)), sizes)
    coords, confidence = member_coords(predictions)
    if method in fusion.LEARNED:
        return clip_to_images(fusion.apply_weights(coords, weights), sizes)
    return clip_to_images(fusion.fuse_fixed(coords, method, confidence), sizes)


def fused_out_of_fold(
    method: str,
    members: list[Member],
    oof: list[Predictions],
    truth: np.ndarray,
    spacing: np.ndarray,
    folds: np.ndarray,
) -> np.ndarray:
    """(N, K, 2) out-of-fold coordinates of ``method``; learned methods cross-validated over
    ``folds`` (weights fitted without the images they predict)."""
    if method in fusion.LEARNED:
        coords, _ = member_coords([[p] for p in oof])
        fused = fusion.cross_validated(method, coords, truth, spacing, folds)
        return clip_to_images(fused, oof[0].image_size)
    return fuse(method, members, [[p] for p in oof])


WITHOUT_TTA = "fusion without TTA: "


def tta_effect(manifest: dict[str, Any]) -> str | None:
    """What the TTA views did to the submitted fusion out-of-fold, when there are views."""
    scores, method = manifest["oof"], manifest["fusion"]
    if f"{WITHOUT_TTA}{method}" not in scores:
        return None
    with_tta = scores[f"fusion: {method}"][MRE]
    without = scores[f"{WITHOUT_TTA}{method}"][MRE]
    return (
        f"TTA: fusion '{method}' OOF MRE {with_tta:.3f} mm with the views, {without:.3f} mm "
        f"with the members' identity views only ({with_tta / without:.3f}x)"
    )
