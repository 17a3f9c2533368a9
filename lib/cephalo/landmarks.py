"""The 38 CL-Detection 2023 landmarks: their names, and MMPose dataset meta information.

The release's files name landmarks "1".."38"; the organisers' first README gave each its
anatomical name (1 Sella, 2 Nasion, 3 Orbitale, ...). The first 19 are ISBI 2015's, in ISBI's
order, so one table serves both datasets: :data:`ANATOMY` is the whole table,
:data:`ISBI_ANATOMY` its first 19 rows. Files keep the numbers; every per-landmark figure or
table shows :func:`landmark_label` ("1 Sella (S)"). A lateral view has no left/right pairs,
so no landmark has a flip partner: MMPose derives identity flip indices from the empty
``swap`` fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ANATOMY: tuple[tuple[str, str], ...] = (
    ("Sella", "S"),
    ("Nasion", "N"),
    ("Orbitale", "Or"),
    ("Porion", "Po"),
    ("Subspinale", "A"),
    ("Supramentale", "B"),
    ("Pogonion", "Pog"),
    ("Menton", "Me"),
    ("Gnathion", "Gn"),
    ("Gonion", "Go"),
    ("Lower incisal incision", "L1"),
    ("Upper incisal incision", "U1"),
    ("Upper lip", "UL"),
    ("Lower lip", "LL"),
    ("Subnasale", "Sn"),
    ("Soft-tissue pogonion", "Pog'"),
    ("Posterior nasal spine", "PNS"),
    ("Anterior nasal spine", "ANS"),
    ("Articulare", "Ar"),
    ("Centre of the symphysis", "D"),
    ("Upper incisor apex", "U1A"),
    ("Lower incisor apex", "L1A"),
    ("Columella", "Cm"),
    ("Pterygomaxillary fissure", "Ptm"),
    ("Condylion", "Co"),
    ("Pronasale", "Prn"),
    ("Basion", "Ba"),
    ("PT point", "PT"),
    ("Bolton", "Bo"),
    ("Upper lip vermilion", "UL'"),
    ("Lower lip vermilion", "LL'"),
    ("Soft-tissue gnathion", "Gn'"),
    ("Soft-tissue menton", "Me'"),
    ("Glabella", "G"),
    ("Soft-tissue nasion", "N'"),
    ("Cervical point", "C"),
    ("Upper molar", "U6"),
    ("Lower molar", "L6"),
)
"""(name, abbreviation) of landmarks 1..38, as the organisers' README lists them."""

NUM_LANDMARKS = len(ANATOMY)
LANDMARK_NAMES: tuple[str, ...] = tuple(str(i) for i in range(1, NUM_LANDMARKS + 1))
ISBI_ANATOMY = ANATOMY[:19]
"""ISBI 2015's 19 landmarks: the first 19 of CL-Detection's, in the same order."""


def landmark_label(name: str | int) -> str:
    """What a figure or table shows for landmark ``name`` ("1".."38", the files' names):
    the number beside the anatomical name, ``"1 Sella (S)"``; an unknown name as it is."""
    key = str(name)
    if key.isdigit() and 1 <= int(key) <= NUM_LANDMARKS:
        full, abbreviation = ANATOMY[int(key) - 1]
        return f"{key} {full} ({abbreviation})"
    return key


def landmark_labels(names: Sequence[str | int]) -> list[str]:
    return [landmark_label(name) for name in names]


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
