"""Model variants by name: what differs between ``rtmpose-t`` and ``rtmpose-l``, or between
``hrnet-w18`` and ``hrnet-w48``, and nothing else.

Every name without ``tiny`` is the network MMPose publishes under that name, tensor for
tensor, so that OpenMMLab's published weights map onto it (``tests/test_published_models.py``
builds both from the configs shipped in the mmpose package): ``rtmpose-t/s/m/l`` are the
CSPNeXt P5 backbones + RTMCCHead (gated attention unit) of
``rtmpose-{t,s,m,l}_8xb256-420e_coco-256x192``; ``hrnet-w32/w48`` the HRNet of
``td-hm_hrnet-w{32,48}_8xb32-210e_coco-256x192`` (4 blocks per branch, 1/1/4/3 modules per
stage), ``hrnet-w18`` the same at width 18 (HRNetV2-W18's stages; the head reads the
highest-resolution branch, as the COCO HRNet configs do). The ``*-tiny`` variants are the same
architectures shrunk until they train in seconds on a CPU, for tests and the demo.
Everything that depends on the input size, codec or landmark count is derived in
:mod:`cephalo.models.network`, not here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

Family = Literal["rtmpose", "hrnet"]


@dataclass(frozen=True)
class RTMPoseVariant:
    """CSPNeXt width/depth multipliers and the head's attention size."""

    deepen_factor: float
    widen_factor: float
    gau_hidden_dims: int = 256
    gau_s: int = 128
    final_layer_kernel_size: int = 7
    family: Family = "rtmpose"

    @property
    def out_channels(self) -> int:
        """Channels of CSPNeXt's last stage (1024 at widen factor 1)."""
        return int(1024 * self.widen_factor)


@dataclass(frozen=True)
class HRNetVariant:
    """Branch widths (the first is the ``w`` in ``hrnet-w32``), blocks per branch and
    modules per stage."""

    width: int
    num_blocks: int = 4
    stem_channels: int = 64
    num_modules: tuple[int, int, int, int] = (1, 1, 4, 3)
    """HRNet modules in stages 1-4 (MMPose's and the HRNet paper's 1/1/4/3)."""
    family: Family = "hrnet"

    @property
    def branch_channels(self) -> tuple[int, int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width, 8 * self.width)


Variant = RTMPoseVariant | HRNetVariant

VARIANTS: dict[str, Variant] = {
    "rtmpose-t": RTMPoseVariant(deepen_factor=0.167, widen_factor=0.375),
    "rtmpose-s": RTMPoseVariant(deepen_factor=0.33, widen_factor=0.5),
    "rtmpose-m": RTMPoseVariant(deepen_factor=0.67, widen_factor=0.75),
    "rtmpose-l": RTMPoseVariant(deepen_factor=1.0, widen_factor=1.0),
    "rtmpose-tiny": RTMPoseVariant(
        deepen_factor=0.167,
        widen_factor=0.125,
        gau_hidden_dims=64,
        gau_s=32,
        final_layer_kernel_size=3,
    ),
    "hrnet-w18": HRNetVariant(width=18),
    "hrnet-w32": HRNetVariant(width=32),
    "hrnet-w48": HRNetVariant(width=48),
    "hrnet-tiny": HRNetVariant(width=16, num_blocks=1, stem_channels=32, num_modules=(1, 1, 1, 1)),
}


def get_variant(name: str) -> Variant:
    """The variant called ``name``; an unknown name is an error that lists the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, VARIANTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Known: {', '.join(VARIANTS)}") from None
