"""The 38 CL-Detection 2023 landmarks, as MMPose dataset meta information.

The release names landmarks "1".."38" (no anatomical names ship with it; the first 19
follow the ISBI 2015 order). A lateral view has no left/right pairs, so no landmark has a
flip partner: MMPose derives identity flip indices from the empty ``swap`` fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NUM_LANDMARKS = 38
LANDMARK_NAMES: tuple[str, ...] = tuple(str(i) for i in range(1, NUM_LANDMARKS + 1))


def mmpose_metainfo(names: Sequence[str] = LANDMARK_NAMES) -> dict[str, Any]:
    """The ``metainfo`` dict MMPose datasets accept in place of a metainfo file, for the
    landmarks ``names`` (CL-Detection's 38 by default; ISBI 2015 has 19)."""
    return dict(
        dataset_name=f"cephalometric-{len(names)}",
        keypoint_info={
            i: dict(name=name, id=i, color=[255, 64, 64], type="", swap="")
            for i, name in enumerate(names)
        },
        skeleton_info={},
        joint_weights=[1.0] * len(names),
        # Only used by COCO-style OKS metrics, which the kit does not rank by.
        sigmas=[0.025] * len(names),
    )
