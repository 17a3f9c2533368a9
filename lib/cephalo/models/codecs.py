"""MSRA heatmaps decoded with DARK that cannot throw a point off the image.

DARK (Zhang et al., 2020) refines a heatmap's maximum by a second-order Taylor expansion of
its log: a shift of a fraction of a pixel. MMPose's ``refine_keypoints_dark`` applies the
shift whatever its size; on a flat or many-peaked heatmap (a weak model, an occluded
landmark) the Hessian is near singular and one landmark lands thousands of pixels away (seen
here: a hrnet-tiny fold whose MRE went from 5.5 to 27.8 mm by one such point). This codec is
MMPose's ``MSRAHeatmap`` (same encoding, same DARK), except that a landmark whose DARK shift
exceeds one heatmap pixel keeps the plain quarter-pixel refinement instead.
"""

from __future__ import annotations

import numpy as np
from mmpose.codecs import MSRAHeatmap
from mmpose.codecs.utils import get_heatmap_maximum, refine_keypoints, refine_keypoints_dark
from mmpose.registry import KEYPOINT_CODECS

MAX_DARK_SHIFT = 1.0  # heatmap pixels


@KEYPOINT_CODECS.register_module()
class BoundedDarkHeatmap(MSRAHeatmap):
    """``MSRAHeatmap`` whose DARK refinement moves a maximum by at most one heatmap pixel."""

    def decode(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.unbiased:
            return super().decode(encoded)
        heatmaps = encoded.copy()
        maxima, scores = get_heatmap_maximum(heatmaps)
        maxima, scores = maxima[None], scores[None]
        dark = refine_keypoints_dark(maxima.copy(), heatmaps, self.blur_kernel_size)
        plain = refine_keypoints(maxima.copy(), heatmaps)
        wild = (np.abs(dark - maxima) > MAX_DARK_SHIFT).any(axis=-1, keepdims=True)
        keypoints = np.where(wild, plain, dark)
        return keypoints * self.scale_factor, scores
