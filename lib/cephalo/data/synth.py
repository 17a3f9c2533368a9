"""Synthetic lateral cephalograms written in the exact CL-Detection 2023 release format.

Why: the real release cannot ship with the kit, yet every step from ``prepare`` to
``submit`` has to run (and be tested) end to end. The generator draws X-ray-like skulls
whose 38 landmarks sit on the drawn anatomy (corners, extrema and centres of bones, teeth and
the soft-tissue profile), never on marks: a model trained on them has to learn appearance
and context, as on the real data.

Orientation: as in the real cephalograms the face looks right (anterior = +x, the profile on
the right of the image), superior is up (+y points down the rows).

How an image is made:

1. One set of named control points in millimetres, head frame (origin at sella, x anterior,
   y inferior, Frankfort plane roughly horizontal), ``_POINTS`` below.
2. Shape modes move groups of them (incisor inclination, gonial angle, mandible length,
   maxillary protrusion, face height, facial depth, cranial base angle, soft-tissue
   thickness, nose size), then a pose (scale, rotation, translation) places the head.
3. Every drawn outline is a curve through those deformed points; points defined as an
   extremum ("most anterior", "lowest", ...) carry a fixed head-frame tangent, so they stay
   the extremum whatever the modes do. Landmarks are the same points, so labels and picture
   agree exactly.
4. Structures add X-ray density (projection is additive: overlaps are brighter); the density
   goes through an exposure curve, blur and noise that depend on the centre.

Centres (full-scale values; ``scale`` shrinks the sizes and divides the spacing by it, so
millimetre distances stay the same):

======  ============  ==========  =====  ====  =====  =============================
centre  W x H (px)    spacing mm  gamma  gain  noise  look
======  ============  ==========  =====  ====  =====  =============================
A       1935 x 2400   0.1         1.0    1.00  2.0    ISBI-like, clean, sharp
B       2089 x 1937   0.125       0.75   0.90  4.5    wide field, bright, noisy, soft
C       2880 x 2304   0.096       1.35   1.05  3.0    large detector, dark, contrasty
======  ============  ==========  =====  ====  =====  =============================

As in the real release (Soredex 1935 x 2400 at 0.1 mm, Soredex 2880 x 2304 at 0.096 mm,
Planmeca "average" 2089 x 1937 at about 0.125 mm), B's image size varies from image to
image (each side by up to ``size_jitter``, 10 %), A's and C's do not. All fit the release's
padded slice of 2400 x 2880 (H x W). Every pixel of an image is at
least 1, so "crop to the last non-zero row and column" recovers its exact size.

Where the centre is recorded: the GT JSON keeps the release's keys only (a strict validator
must accept it as real data); the generator writes a sidecar ``<split>-meta.json`` with the
centre, size and spacing of every slice, plus the seed and scale.

Determinism: image ``i`` of split ``s`` (0 train, 1 test) draws from
``SeedSequence(seed, spawn_key=(s, i))``, so the same seed gives byte-identical files, train
and test never share an image, and an image does not depend on how many are generated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from cephalo.data.release import ImageLandmarks, write_gt, write_stack
from cephalo.files import atomic_open
from cephalo.landmarks import NUM_LANDMARKS

PADDED_HW = (2400, 2880)
"""The release's common slice size (H, W) at full scale."""


@dataclass(frozen=True)
class Centre:
    """One simulated acquisition site (sizes at full scale)."""

    name: str
    width: int
    height: int
    spacing: float
    sella_mm: tuple[float, float]  # nominal sella position from the top-left corner
    gamma: float  # exposure curve: offset + gain * (1 - exp(-mu * density)) ** gamma
    gain: float
    offset: float
    mu: float  # attenuation per density unit: exposure
    noise: float  # grey levels at full scale
    blur_mm: float
    heel: float  # left-right exposure gradient (anode heel effect)
    size_jitter: float = 0.0  # each side varies uniformly by up to this fraction per image


CENTRES: tuple[Centre, ...] = (
    Centre("A", 1935, 2400, 0.1, (80.0, 100.0), 1.0, 1.0, 0.03, 1.0, 2.0, 0.10, 0.04),
    Centre("B", 2089, 1937, 0.125, (128.0, 95.0), 0.75, 0.9, 0.07, 0.85, 4.5, 0.25, -0.06, 0.1),
    Centre("C", 2880, 2304, 0.096, (128.0, 86.0), 1.35, 1.05, 0.01, 1.2, 3.0, 0.15, 0.08),
)

# The 38 landmarks in release order: (control point, name, definition). 1-19 follow the ISBI
# 2015 order. The real release ships no names for 20-38; these are this generator's own
# placements, chosen among common cephalometric points on the structures it draws.
LANDMARKS: tuple[tuple[str, str, str], ...] = (
    ("S", "sella", "centre of the pituitary fossa (the circle its floor follows)"),
    ("N", "nasion", "frontonasal junction: deepest point of the bony profile below glabella"),
    ("Or", "orbitale", "lowest point of the orbital rim"),
    ("Po", "porion", "top of the ear-rod ring seated in the external auditory meatus"),
    ("A", "subspinale (A point)", "most posterior point of the maxilla between ANS and Pr"),
    ("B", "supramentale (B point)", "most posterior point of the symphysis between Id and Pog"),
    ("Pog", "pogonion", "most anterior point of the bony chin"),
    ("Me", "menton", "lowest point of the symphysis"),
    ("Gn", "gnathion", "point of the chin outline midway (45 deg) between Pog and Me"),
    ("Go", "gonion", "point of the mandibular angle where the outline bisects ramus and body"),
    ("LIE", "lower incisal incision", "incisal tip of the lower central incisor"),
    ("UIE", "upper incisal incision", "incisal tip of the upper central incisor"),
    ("UL", "upper lip", "most anterior point of the upper lip"),
    ("LL", "lower lip", "most anterior point of the lower lip"),
    ("Sn", "subnasale", "junction of the columella and the upper lip"),
    ("sPog", "soft tissue pogonion", "most anterior point of the soft-tissue chin"),
    ("PNS", "posterior nasal spine", "posterior tip of the hard palate"),
    ("ANS", "anterior nasal spine", "anterior tip of the hard palate"),
    ("Ar", "articulare", "crossing of the condyle's posterior border and the basiocciput"),
    ("Ba", "basion", "tip of the clivus, front of the foramen magnum"),
    ("Pt", "pterygomaxillary point", "top of the pterygomaxillary fissure (teardrop)"),
    ("UIA", "upper incisor apex", "root apex of the upper central incisor"),
    ("LIA", "lower incisor apex", "root apex of the lower central incisor"),
    ("UMT", "upper molar cusp", "mesial cusp tip of the upper first molar"),
    ("LMT", "lower molar cusp", "mesial cusp tip of the lower first molar"),
    ("G", "glabella", "most anterior point of the frontal bone"),
    ("sG", "soft tissue glabella", "most anterior point of the soft-tissue forehead"),
    ("sN", "soft tissue nasion", "deepest point of the soft tissue between forehead and nose"),
    ("Prn", "pronasale", "most anterior point of the nose"),
    ("sA", "soft tissue A point", "deepest point of the upper lip between Sn and UL"),
    ("Sto", "stomion", "contact point of the lips (deepest point between UL and LL)"),
    ("sB", "soft tissue B point", "deepest point between the lower lip and the soft chin"),
    ("sMe", "soft tissue menton", "lowest point of the soft-tissue chin"),
    ("Pr", "prosthion", "lowest, most anterior point of the upper alveolar crest"),
    ("Id", "infradentale", "highest, most anterior point of the lower alveolar crest"),
    ("Co", "condylion", "most superior point of the mandibular condyle"),
    ("Pc", "posterior clinoid", "tip of the dorsum sellae"),
    ("Rh", "rhinion", "lower tip of the nasal bones"),
)
assert len(LANDMARKS) == NUM_LANDMARKS

# Control points (mm, head frame) and the group each belongs to; groups decide which shape
# modes move a point. Points after the landmarks only shape the drawing.
# fmt: off
_POINTS: dict[str, tuple[float, float, str]] = {
    # cranium
    "S": (0, 0, "cranium"), "N": (70, -8, "cranium"), "G": (76, -21, "cranium"),
    "Or": (53, 22, "cranium"), "orb_c": (53, 4, "cranium"),
    "Po": (-24, 20, "cranium"), "ear_c": (-24, 24.5, "cranium"),
    "Pt": (19, 22, "cranium"), "ptm_b": (22.5, 44, "cranium"),
    "Rh": (84, 13, "cranium"), "Pc": (-5.6, -9.5, "cranium"),
    "fn": (73, -13, "cranium"), "fs_c": (67, -25, "cranium"),
    "vo1": (73, -45, "cranium"), "vo2": (62, -74, "cranium"), "vo3": (38, -98, "cranium"),
    "vo4": (0, -112, "cranium"), "vo5": (-40, -110, "cranium"), "vo6": (-78, -90, "cranium"),
    "vo7": (-104, -52, "cranium"), "vo8": (-113, -10, "cranium"), "vo9": (-106, 26, "cranium"),
    "vo10": (-84, 40, "cranium"), "ob1": (58, -9, "cranium"), "ob2": (38, -6, "cranium"),
    "ob3": (18, -2, "cranium"), "ob4": (-4, 12, "cranium"),
    "eb1": (-88, 32, "cranium"), "eb2": (-62, 38, "cranium"), "eb3": (-36, 34, "cranium"),
    "eb4": (-15, 20, "cranium"), "eb5": (-9, 4, "cranium"), "eb6": (18, -9, "cranium"),
    "eb7": (40, -14, "cranium"), "eb8": (60, -17, "cranium"),
    "sp1": (14, -6, "cranium"), "sp2": (26, 4, "cranium"), "sp3": (23, 20, "cranium"),
    "sp4": (5, 25, "cranium"), "sp5": (-10, 15, "cranium"), "sp6": (-8.5, -1, "cranium"),
    "sps_c": (14, 10, "cranium"),
    "pe1": (-4, 8, "cranium"), "pe2": (-22, 3, "cranium"), "pe3": (-46, 9, "cranium"),
    "pe4": (-57, 28, "cranium"), "pe5": (-44, 42, "cranium"), "pe6": (-27, 37, "cranium"),
    "pe7": (-12, 24, "cranium"),
    "mf1": (28, 6, "cranium"), "mf2": (60, 0, "cranium"), "mf3": (71, 12, "cranium"),
    "mf4": (75, 38, "cranium"), "mxs_c": (44, 32, "cranium"),
    # cranial base behind sella, upper spine
    "Ba": (-25, 37.5, "basi"), "Op": (-58, 46, "basi"), "cl1": (-8, 12, "basi"),
    "cl2": (-19, 29, "basi"), "bo1": (3, 24.5, "basi"), "bo2": (4, 16, "basi"),
    "c2_t": (-30, 43, "basi"), "c3_c": (-31, 99, "basi"), "c4_c": (-32, 120, "basi"),
    "c1a_c": (-21, 48, "basi"), "c1p_c": (-62, 52, "basi"),
    "aw_p1": (-4, 31, "basi"), "aw_p2": (-15, 46, "basi"), "aw_p3": (-16, 72, "basi"),
    "aw_p4": (-16, 102, "basi"), "aw_p5": (-17, 150, "basi"),
    # maxilla
    "ANS": (77, 45, "maxilla"), "PNS": (22, 48, "maxilla"), "A": (69, 51, "maxilla"),
    "Pr": (71.8, 62.5, "maxilla"), "nf1": (38, 45, "maxilla"), "nf2": (58, 43.5, "maxilla"),
    "mx1": (72.5, 47.5, "maxilla"), "mx2": (70, 57, "maxilla"), "al1": (64, 61, "maxilla"),
    "al2": (50, 61, "maxilla"), "al3": (35, 60, "maxilla"), "tub": (24, 56, "maxilla"),
    "pal1": (64, 53, "maxilla"), "pal2": (48, 52.5, "maxilla"), "pal3": (32, 51, "maxilla"),
    "UMT": (42, 68.5, "maxilla"), "aw_a1": (14, 49, "maxilla"),
    "UIE": (74.5, 73.5, "upper_incisor"), "UIA": (64.5, 52, "upper_incisor"),
    # mandible: ramus points also turn with the gonial angle
    "Co": (-12, 20, "ramus"), "Ar": (-15.6, 31.3, "ramus"), "cd1": (-7.5, 23, "ramus"),
    "cd2": (-6.5, 29, "ramus"), "sn": (3, 35, "ramus"), "cor": (15, 25, "ramus"),
    "cr1": (17, 33, "ramus"), "ar1": (15, 48, "ramus"), "rp2": (-12.5, 48, "ramus"),
    "cd3": (-16.5, 24, "ramus"),
    "Go": (-4, 82, "mandible"), "Me": (61, 114, "mandible"), "Pog": (69.5, 104, "mandible"),
    "Gn": (67.5, 110.5, "mandible"), "B": (67, 90, "mandible"), "Id": (70.5, 78.5, "mandible"),
    "ar2": (20, 62, "mandible"), "rm": (25, 72, "mandible"), "all1": (35, 75.5, "mandible"),
    "all2": (50, 76.5, "mandible"), "all3": (62, 77.5, "mandible"),
    "ib1": (40, 103.5, "mandible"), "ib2": (20, 93.5, "mandible"), "ib3": (8, 88.5, "mandible"),
    "rp1": (-8.5, 68, "mandible"), "idl": (63, 80, "mandible"), "ls1": (57.5, 92, "mandible"),
    "ls2": (56, 105, "mandible"), "mc1": (2, 58, "mandible"), "mc2": (22, 86, "mandible"),
    "mc3": (46, 93, "mandible"), "LMT": (45.5, 67.8, "mandible"), "hy_c": (24, 122, "mandible"),
    "aw_a2": (4, 62, "mandible"), "aw_a3": (-4, 82, "mandible"), "aw_a4": (-5, 106, "mandible"),
    "aw_a5": (-6, 150, "mandible"),
    "LIE": (72, 71.5, "lower_incisor"), "LIA": (62, 91.5, "lower_incisor"),
    # soft tissue
    "sG": (82, -22, "soft_cranium"), "sN": (77, -7, "soft_cranium"),
    "sf1": (79, -48, "soft_cranium"), "nb3": (-98, 78, "soft_cranium"),
    "nb2": (-80, 140, "soft_cranium"), "nb1": (-78, 300, "soft_cranium"),
    "sd1": (81, 3, "nose"), "sd2": (88, 14, "nose"), "sd3": (96, 23, "nose"),
    "Prn": (103, 31, "nose_tip"), "Cm": (97, 40.5, "nose_tip"),
    "Sn": (88, 46, "soft_upper"), "sA": (87, 53, "soft_upper"), "UL": (92, 63, "soft_upper"),
    "Sto": (87.5, 70, "soft_upper"),
    "LL": (90, 79, "soft_lower"), "sB": (83, 92, "soft_lower"), "sPog": (84, 106, "soft_lower"),
    "sMe": (74, 120, "soft_lower"), "sm1": (55, 116.5, "soft_lower"),
    "thr": (30, 113, "soft_lower"), "nf_1": (24, 138, "soft_lower"),
    "nf_2": (22, 300, "soft_lower"),
}
# fmt: on
_NAMES = tuple(_POINTS)
_INDEX = {name: i for i, name in enumerate(_NAMES)}
_BASE = np.array([(x, y) for x, y, _ in _POINTS.values()], dtype=np.float64)
_GROUP = np.array([g for _, _, g in _POINTS.values()])
_LANDMARK_INDEX = np.array([_INDEX[name] for name, _, _ in LANDMARKS])
_VAULT = ("vo1", "vo2", "vo3", "vo4", "vo5", "vo6", "vo7", "vo8", "vo9")
_VAULT_CENTRE = np.array([-18.0, -25.0])


@dataclass(eq=False)
class SynthImage:
    """One generated cephalogram, unpadded."""

    image: np.ndarray  # (h, w) uint8, greyscale
    points: np.ndarray  # (38, 2) float64, pixel x (column), y (row)
    spacing: float  # mm per pixel
    centre: str


@dataclass(frozen=True)
class SplitFiles:
    """The files of one generated split."""

    stack: Path
    gt: Path
    meta: Path


# --------------------------------------------------------------------------- shape and pose


def _rotate(p: np.ndarray, about: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (p - about) @ rot.T + about


def _deform(rng: np.random.Generator) -> np.ndarray:
    """The control points after this image's shape modes (mm, head frame)."""
    p = _BASE.copy()

    def z(sd: float) -> float:
        # Clipped so that no mode can fold the anatomy (e.g. A in front of ANS).
        return sd * float(np.clip(rng.standard_normal(), -2.5, 2.5))

    def sel(*groups: str) -> np.ndarray:
        return np.isin(_GROUP, groups)

    def at(name: str) -> np.ndarray:
        return p[_INDEX[name]].copy()

    ui, li = sel("upper_incisor"), sel("lower_incisor")
    tips = at("UIE"), at("LIE")
    p[ui] = _rotate(p[ui], at("UIA"), z(4.0))  # incisor inclination
    p[li] = _rotate(p[li], at("LIA"), z(4.0))
    # The lips rest on the incisors: they follow half of the tips' movement.
    p[[_INDEX["UL"], _INDEX["Sto"]]] += 0.5 * (at("UIE") - tips[0])
    p[_INDEX["LL"]] += 0.5 * (at("LIE") - tips[1])
    ramus = sel("ramus")
    p[ramus] = _rotate(p[ramus], at("Go"), z(2.5))  # gonial angle
    # Mandible length: the body stretches along itself, the symphysis moves the most.
    lower = sel("mandible", "lower_incisor", "soft_lower")
    go, me = at("Go"), at("Me")
    w = np.clip((p[lower, 0] - go[0]) / (me[0] - go[0]), 0, 1)[:, None]
    p[lower] += w * z(2.5) * (me - go) / np.linalg.norm(me - go)
    # Maxillary protrusion, fading out towards PNS.
    upper = sel("maxilla", "upper_incisor", "soft_upper", "nose_tip")
    w = np.clip((p[upper, 0] - 10.0) / 60.0, 0, 1)
    p[upper, 0] += w * z(2.0)
    # Face height: everything below the Frankfort plane stretches vertically.
    low = p[:, 1] > 20.0
    p[low, 1] = 20.0 + (p[low, 1] - 20.0) * (1.0 + z(0.05))
    front = p[:, 0] > 0.0  # facial depth
    p[front, 0] *= 1.0 + z(0.03)
    basi = sel("basi")
    p[basi] = _rotate(p[basi], np.zeros(2), z(2.5))  # cranial base angle
    for group, sd in (("soft_upper", 1.2), ("soft_lower", 1.5), ("soft_cranium", 0.8)):
        p[sel(group), 0] += z(sd)  # soft-tissue thickness
    nose = sel("nose", "nose_tip")
    p[nose, 0] += z(2.5) * np.clip((p[nose, 0] - 80.0) / 23.0, 0, 1)  # nose size
    # Stomion is where the lips meet, behind both whatever the modes did to them.
    lips = min(p[_INDEX["UL"], 0], p[_INDEX["LL"], 0])
    p[_INDEX["Sto"], 0] = min(p[_INDEX["Sto"], 0], lips - 3.0)
    return p


# --------------------------------------------------------------------------------- curves

Tangent = float | np.ndarray | None
_CORNER = math.nan


def _curve(points: np.ndarray, tangents: list[Tangent], closed: bool) -> np.ndarray:
    """A dense cubic Hermite curve through ``points`` (mm), about 4 samples per mm.

    ``tangents[i]``: None for a Catmull-Rom tangent; an angle in degrees (head frame, 0 =
    anterior, 90 = inferior) or a direction vector to force the direction there, so that an
    extremum stays an extremum; NaN for a corner.
    """
    n = len(points)
    tang = np.empty_like(points)
    for i in range(n):
        prev = points[i - 1] if closed or i > 0 else points[i]
        nxt = points[(i + 1) % n] if closed or i < n - 1 else points[i]
        spec = tangents[i]
        if spec is None:
            tang[i] = (nxt - prev) / 2
            continue
        if isinstance(spec, float) and math.isnan(spec):
            tang[i] = 0.0
            continue
        if isinstance(spec, np.ndarray):
            direction = spec / np.linalg.norm(spec)
        else:
            direction = np.array([math.cos(math.radians(spec)), math.sin(math.radians(spec))])
        size = (np.linalg.norm(points[i] - prev) + np.linalg.norm(nxt - points[i])) / 2
        tang[i] = size * direction
    out = []
    for i in range(n if closed else n - 1):
        j = (i + 1) % n
        k = max(2, math.ceil(4 * np.linalg.norm(points[j] - points[i])))
        t = np.linspace(0, 1, k, endpoint=False)[:, None]
        h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
        h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
        out.append(h00 * points[i] + h10 * tang[i] + h01 * points[j] + h11 * tang[j])
    if not closed:
        out.append(points[-1:])
    return np.concatenate(out)


def _ellipse(centre: np.ndarray, rx: float, ry: float, tilt: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    e = np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)
    return _rotate(e, np.zeros(2), tilt) + centre


# Tooth outlines as (distance towards the apex, offset to the labial/mesial side) in mm, from
# the tip or cusp that is the landmark. "x" marks the tangent along the offset axis there
# (the tip is the extremum), "c" a corner.
# fmt: off
_INCISOR = [
    (0, 0, "x"), (1.5, 1.3, None), (4, 2.5, None), (7.5, 3.1, None), (10.5, 2.9, None),
    (14, 2.1, None), (18, 1.3, None), (23.5, 0, "c"), (18, -1.4, None), (14, -2.3, None),
    (10.5, -3.0, None), (7.5, -2.9, None), (4, -1.4, None), (1.5, -0.8, None),
]
_MOLAR = [
    (0, 0, "x"), (0.9, 1.3, None), (2.6, 2.3, None), (5.5, 2.3, None), (12, 1.9, None),
    (16.5, 0.8, "c"), (12.5, -0.5, None), (8, -2.0, "c"), (12.5, -3.5, None), (16, -4.6, "c"),
    (12, -6.3, None), (5.5, -7.5, None), (2.5, -7.6, None), (0.8, -6.6, None), (0, -5.3, "x"),
    (1.3, -2.7, None),
]
_PREMOLAR = [
    (0, 0, "x"), (0.8, 1.8, None), (2.5, 3.2, None), (6, 3.3, None), (10, 2.6, None),
    (15, 1.5, None), (20, 0, "c"), (15, -1.5, None), (10, -2.6, None), (6, -3.3, None),
    (2.5, -3.2, None), (0.8, -1.8, None),
]
# fmt: on


def _tooth(
    tip: np.ndarray,
    apex_dir: np.ndarray,
    side: np.ndarray,
    profile: list,
    size: float = 1.0,
    crown: float = 7.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(outline, enamel-covered crown polygon) of a tooth in the head frame.

    ``crown`` is the crown's height in mm at ``size`` 1.
    """
    prof = np.array([(a, b) for a, b, _ in profile]) * size
    pts = tip + prof[:, :1] * apex_dir + prof[:, 1:] * side
    marks = {"x": side, "c": _CORNER, None: None}
    outline = _curve(pts, [marks[m] for _, _, m in profile], True)
    return outline, pts[prof[:, 0] <= crown * size]


# ------------------------------------------------------------------------------- anatomy


@dataclass
class _Shape:
    layer: str  # "soft", "bone" or "metal"
    pts: np.ndarray  # mm, head frame (image frame when ``image_frame``)
    value: float  # density added inside (fill) or along (stroke)
    width: float = 0.0  # mm; 0 fills the closed outline, > 0 strokes it
    closed: bool = True
    soft: float = 0.0  # mm of edge blur
    image_frame: bool = False


def _anatomy(p: np.ndarray) -> list[_Shape]:
    """Every drawn structure of the head, built from the deformed control points."""

    def at(name: str) -> np.ndarray:
        return p[_INDEX[name]]

    def pts(names: str) -> np.ndarray:
        return p[[_INDEX[n] for n in names.split()]]

    def c(spec: str, closed: bool = True, **named: np.ndarray) -> np.ndarray:
        """A curve through control points: "name", "name@degrees", "name@c" (corner) or
        "name@key" (a tangent vector passed as ``key=``)."""
        names, tangents = [], []
        for token in spec.split():
            name, _, t = token.partition("@")
            names.append(name)
            if not t:
                tangents.append(None)
            else:
                tangents.append(_CORNER if t == "c" else named[t] if t in named else float(t))
        return _curve(p[[_INDEX[n] for n in names]], tangents, closed)

    def fill(layer: str, outline: np.ndarray, value: float, soft: float = 0.0) -> None:
        shapes.append(_Shape(layer, outline, value, soft=soft))

    def stroke(line: np.ndarray, value: float, width: float, closed: bool = False) -> None:
        shapes.append(_Shape("bone", line, value, width=width, closed=closed))

    shapes: list[_Shape] = []

    # Soft tissue: the head's outline (scalp 6 mm outside the vault), the airway cut out.
    out = [at(n) - _VAULT_CENTRE for n in reversed(_VAULT)]
    scalp = np.array([_VAULT_CENTRE + v * (1 + 6.0 / np.linalg.norm(v)) for v in out])
    profile = c(
        "sf1 sG@90 sN@90 sd1 sd2 sd3 Prn@90 Cm Sn@c sA@90 UL@90 Sto@90 LL@90 sB@90 sPog@90 "
        "sMe@180 sm1 thr nf_1 nf_2",
        closed=False,
    )
    back = np.concatenate([pts("nb1 nb2 nb3"), scalp])
    fill("soft", np.concatenate([_curve(back, [None] * len(back), False), profile]), 1.0)
    fill("soft", c("aw_p1 aw_p2 aw_p3 aw_p4 aw_p5 aw_a5 aw_a4 aw_a3 aw_a2 aw_a1"), -0.6, 1.5)

    # Cranial vault: outer table closed through the cranial base, brain cavity cut out.
    vault = " ".join(reversed(_VAULT))
    fill("bone", c(f"G@90 fn N@90 ob1 ob2 ob3 ob4 cl2 Ba@c Op vo10 {vault}"), 0.55)
    inner = np.array([_VAULT_CENTRE + 0.93 * (at(n) - _VAULT_CENTRE) for n in ("G", *_VAULT)])
    brain = np.concatenate([inner, pts("eb1 eb2 eb3 eb4 eb5 Pc sp1 eb6 eb7 eb8")])
    fill("bone", _curve(brain, [None] * len(brain), True), -0.35)
    stroke(_curve(inner, [None] * len(inner), False), 0.15, 1.2)  # inner table
    stroke(c("eb7 eb6 sp1", closed=False), 0.2, 1.0)  # anterior cranial base
    stroke(c("eb5 eb4 eb3 eb2", closed=False), 0.15, 1.0)  # clivus, posterior fossa floor
    fill("bone", _ellipse(at("fs_c"), 4.5, 8.0, -15), -0.3, soft=0.8)  # frontal sinus
    fill("bone", c("pe1 pe2 pe3 pe4 pe5 pe6 pe7"), 0.4, soft=2.5)  # petrous, mastoid

    # Sphenoid with the pituitary fossa (a circle of radius 5 around S) cut into its top.
    angles = np.radians(np.linspace(215, -35, 40))
    arc = at("S") + 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    fill("bone", np.concatenate([c("sp1 sp2 sp3 sp4 sp5 sp6 Pc@c", closed=False), arc]), 0.45)
    stroke(np.concatenate([pts("sp6 Pc"), arc, pts("sp1")]), 0.4, 0.8)  # its cortex
    fill("bone", _ellipse(at("sps_c"), 7, 8), -0.4, soft=1.0)  # sphenoid sinus
    fill("bone", c("cl1 cl2 Ba@c Ar bo1 bo2"), 0.5)  # basiocciput, its underside through Ar

    # Midface: maxillary body and zygoma, sinus, orbit, nasal bones, pterygomaxillary fissure.
    fill("bone", c("mf1 mf2 mf3 mf4 ANS@c PNS@c"), 0.22, soft=1.0)
    fill("bone", _ellipse(at("mxs_c"), 14, 9, 10), -0.15, soft=2.0)
    oc = at("orb_c")
    ry = at("Or")[1] - oc[1]
    orbit = _ellipse(oc, 0.85 * ry, ry)
    stroke(orbit, 0.3, 1.5, closed=True)
    fill("bone", orbit, -0.1, soft=1.0)
    n, rh = at("N"), at("Rh")
    along = (rh - n) / np.linalg.norm(rh - n)
    front = np.array([-along[1], along[0]])
    front = front if front[0] > 0 else -front
    fill("bone", np.array([n - 3.0 * front, n + 0.3 * front, rh, rh - 1.2 * front]), 0.45)
    stroke(np.array([n, n - 6.0 * front]), -0.35, 0.4)  # frontonasal suture
    teardrop = np.array([[0, 0], [3, 2], [5, 10], [3.5, 22], [1.5, 10], [-0.5, 3]], float)
    teardrop[:, 1] *= (at("ptm_b")[1] - at("Pt")[1]) / 22.0
    ptm = _curve(at("Pt") + teardrop, [0.0, None, None, _CORNER, None, None], True)
    fill("bone", ptm, -0.25)
    stroke(ptm, 0.25, 0.6, closed=True)

    # Maxilla and hard palate.
    fill("bone", c("PNS@c nf1 nf2 ANS@c mx1 A@90 mx2 Pr@c al1 al2 al3 tub"), 0.45)
    fill("bone", c("PNS@c nf1 nf2 ANS@c mx1 pal1 pal2 pal3"), 0.35)

    # Mandible: body and ramus with their cortex, the symphysis, the canal; the hyoid.
    go, me, ar = at("Go"), at("Me"), at("Ar")
    go_t = (go - me) / np.linalg.norm(go - me) + (ar - go) / np.linalg.norm(ar - go)
    border = "Me@180 ib1 ib2 ib3 Go@go rp1"
    symphysis = "Id@c B@90 Pog@90 Gn@135"
    mandible = c(
        f"Co@0 cd1 cd2 sn@0 cor@c cr1 ar1 ar2 rm all1 all2 all3 {symphysis} {border} rp2 Ar cd3",
        go=go_t,
    )
    fill("bone", mandible, 0.5)
    stroke(mandible, 0.3, 1.8, closed=True)
    shapes.append(_Shape("bone", c(border, False, go=go_t), 0.25, 2.5, False, soft=0.5))
    fill("bone", c(f"{symphysis} Me@180 ls2 ls1 idl"), 0.3)
    shapes.append(_Shape("bone", c("mc1 mc2 mc3", False), -0.12, 2.5, False, soft=0.8))  # canal
    fill("bone", _ellipse(at("hy_c"), 6, 2.5, -20), 0.5, soft=0.5)

    # Upper spine: C1 arches, C2 with the dens, C3, C4.
    c2 = at("c2_t") + np.array(
        [[-3, 2], [0, 0], [4, 2], [5, 11], [10, 15], [11, 37], [8, 43], [-10, 43], [-12, 27],
         [-10, 13], [-4, 10]], float,
    )  # fmt: skip
    fill("bone", _curve(c2, [None, 0.0] + [None] * 9, True), 0.5, soft=0.6)
    for name in ("c3_c", "c4_c"):
        v = at(name) + np.array([[-10, -8], [10, -8.5], [10.5, 8], [-10, 8.5]], float)
        fill("bone", _curve(v, [None] * 4, True), 0.5, soft=0.6)
    fill("bone", _ellipse(at("c1a_c"), 2.5, 5), 0.45, soft=0.5)
    fill("bone", _ellipse(at("c1p_c"), 9, 3.5, -10), 0.45, soft=0.5)

    shapes.extend(_teeth(p))
    return shapes


def _teeth(p: np.ndarray) -> list[_Shape]:
    """Incisors, canines, premolars and molars, placed from the deformed landmarks."""

    def at(name: str) -> np.ndarray:
        return p[_INDEX[name]]

    def anterior_normal(axis: np.ndarray) -> np.ndarray:
        normal = np.array([-axis[1], axis[0]])
        return normal if normal[0] > 0 else -normal

    shapes = []

    def add_tooth(outline: np.ndarray, crown: np.ndarray, value: float) -> None:
        shapes.append(_Shape("bone", outline, value))
        shapes.append(_Shape("bone", crown, 0.45))  # enamel

    for tip_name, apex_name in (("UIE", "UIA"), ("LIE", "LIA")):
        tip, apex = at(tip_name), at(apex_name)
        length = float(np.linalg.norm(apex - tip))
        axis = (apex - tip) / length
        size = length / 23.5
        add_tooth(*_tooth(tip, axis, anterior_normal(axis), _INCISOR, size, crown=10.5), 0.85)
        shapes.append(
            _Shape("bone", np.array([tip + 3 * axis, apex - 1.5 * axis]), -0.3, 0.6, False)
        )  # pulp canal
    # The occlusal plane runs from the first molars' cusps to the incisors' overlap.
    incisors = (at("UIE") + at("LIE")) / 2
    for cusp_name, incisor_name, down in (("UMT", "UIE", -1.0), ("LMT", "LIE", 1.0)):
        cusp, incisor = at(cusp_name), at(incisor_name)
        mesial = (incisors - cusp) / np.linalg.norm(incisors - cusp)
        root = np.array([-mesial[1], mesial[0]])
        root = root if root[1] * down > 0 else -root  # upward for the upper teeth
        for shift in (-10.5, 0.0):  # second and first molar
            add_tooth(*_tooth(cusp + shift * mesial, root, mesial, _MOLAR), 0.7)
        start = cusp + 2.5 * mesial
        for frac, length in ((0.3, 20.0), (0.55, 21.0), (0.8, 26.0)):  # premolars, canine
            tip = start + frac * (incisor - start)
            axis = root - 0.15 * frac * mesial
            axis /= np.linalg.norm(axis)
            outline, crown = _tooth(tip, axis, mesial, _PREMOLAR, length / 20.0)
            shapes += [_Shape("bone", outline, 0.4), _Shape("bone", crown, 0.25)]
    return shapes


def _ear_rods(ear: np.ndarray, radius: float) -> list[_Shape]:
    """The cephalostat's ear rods (image frame, mm): metal rings and the vertical holders.

    The near ring's outer edge has ``radius``; the far-side ring is magnified and offset.
    """
    shapes = []
    for offset, grow, value in ((np.zeros(2), 1.0, 1.6), (np.array([1.6, -1.1]), 1.08, 0.9)):
        centre = ear + offset
        r = radius * grow
        ring = _ellipse(centre, r - 0.6, r - 0.6)
        shapes.append(_Shape("metal", ring, value, width=1.2, image_frame=True))
        bar = np.array([[-3.5, -1.0], [3.5, -1.0], [3.5, -400.0], [-3.5, -400.0]]) + centre
        shapes.append(_Shape("metal", bar, 0.12, image_frame=True))
        shapes.append(_Shape("metal", bar, 0.1, width=0.8, image_frame=True))
    return shapes


# ------------------------------------------------------------------------------ rendering


def _draw(canvas: np.ndarray, pts: np.ndarray, shape: _Shape, spacing: float) -> None:
    """Add one shape's density to ``canvas``, anti-aliased, in its bounding box only."""
    height, width = canvas.shape
    line = shape.width / spacing
    blur = shape.soft / spacing
    pad = 2 + math.ceil(line) + math.ceil(3 * blur)
    x0 = max(0, math.floor(pts[:, 0].min()) - pad)
    y0 = max(0, math.floor(pts[:, 1].min()) - pad)
    x1 = min(width, math.ceil(pts[:, 0].max()) + pad + 1)
    y1 = min(height, math.ceil(pts[:, 1].max()) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # 4 fractional bits: cv2 draws at 1/16 pixel precision.
    fixed = np.round((pts - [x0, y0]) * 16).astype(np.int32)
    value = shape.value
    if shape.width == 0:
        cv2.fillPoly(mask, [fixed], 255, cv2.LINE_AA, 4)
    else:
        thickness = max(1, round(line))
        value *= min(1.0, line / thickness)  # thinner than a pixel: fainter instead
        cv2.polylines(mask, [fixed], shape.closed, 255, thickness, cv2.LINE_AA, 4)
    if blur > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), blur)
    roi = canvas[y0:y1, x0:x1]
    cv2.addWeighted(roi, 1.0, mask, value / 255.0, 0.0, dst=roi, dtype=cv2.CV_32F)


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur, computed on a reduced copy (the result is smooth anyway)."""
    height, width = image.shape
    f = max(1, int(sigma / 3))
    small = cv2.resize(
        image, (max(1, width // f), max(1, height // f)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma / f)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _field(rng: np.random.Generator, size_hw: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth unit-variance noise with features about ``cell`` pixels wide."""
    height, width = size_hw
    grid = rng.standard_normal((math.ceil(height / cell) + 3, math.ceil(width / cell) + 3))
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _render(
    shapes: list[_Shape],
    to_px: Callable[[np.ndarray], np.ndarray],
    size_hw: tuple[int, int],
    spacing: float,
    centre: Centre,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rasterise the shapes into densities and expose them like the centre's machine."""
    layers = {name: np.zeros(size_hw, np.float32) for name in ("soft", "bone", "metal")}
    for shape in shapes:
        pts = shape.pts / spacing if shape.image_frame else to_px(shape.pts)
        _draw(layers[shape.layer], pts, shape, spacing)
    soft = np.clip(layers["soft"], 0, 1)
    # Thicker tissue absorbs more: the head is brighter inside than at its outline.
    density = soft * (0.15 + 0.4 * _smooth(soft, 15.0 / spacing))
    texture = 1.0 + 0.15 * _field(rng, size_hw, 14.0 / spacing)
    texture += 0.08 * _field(rng, size_hw, 3.0 / spacing)
    density += layers["bone"] * texture + layers["metal"]
    # Cavities are drawn as negative density; where one pokes out of its bone, it is air.
    np.maximum(density, 0.0, out=density)
    intensity = 1.0 - np.exp(-centre.mu * density)
    intensity = centre.offset + centre.gain * intensity**centre.gamma
    heel = np.linspace(-0.5, 0.5, size_hw[1], dtype=np.float32) * centre.heel
    intensity *= 1.0 + heel
    blur = centre.blur_mm / spacing
    if blur > 0.3:
        intensity = cv2.GaussianBlur(intensity, (0, 0), blur)
    # Quantum noise; partly correlated by the detector, so it shrinks slower than white
    # noise when the image is made smaller.
    scale = centre.spacing / spacing
    noise = rng.standard_normal(size_hw, dtype=np.float32)
    intensity = intensity * 255.0 + noise * (centre.noise * math.sqrt(scale))
    # Never 0: the release's padding is the only zero, so cropping finds the exact size.
    return np.clip(np.rint(intensity), 1, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ API


def padded_size(scale: float = 1.0) -> tuple[int, int]:
    """The stack's slice size (H, W) at ``scale``."""
    return round(PADDED_HW[0] * scale), round(PADDED_HW[1] * scale)


def image_size(
    centre: Centre, scale: float, draw: np.random.Generator | None = None
) -> tuple[int, int]:
    """(H, W) of one image of ``centre`` at ``scale``: the centre's size, varied by up to
    ``size_jitter`` per side with ``draw``, and never larger than the padded slice."""
    factors = (
        1 + centre.size_jitter * draw.uniform(-1, 1, 2)
        if draw is not None and centre.size_jitter
        else np.ones(2)
    )
    return (
        min(round(centre.height * factors[0] * scale), padded_size(scale)[0]),
        min(round(centre.width * factors[1] * scale), padded_size(scale)[1]),
    )


def generate_image(seed: int, split: int, index: int, scale: float = 1.0) -> SynthImage:
    """Image ``index`` of ``split`` (0 train, 1 test) for ``seed``, unpadded, in memory."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    # A third stream for the size: drawing it leaves the first two (and so every image of a
    # centre of fixed size) as they were.
    geo, pix, size_draw = (
        np.random.default_rng(s)
        for s in np.random.SeedSequence(seed, spawn_key=(split, index)).spawn(3)
    )
    centre = CENTRES[int(geo.integers(len(CENTRES)))]
    spacing = centre.spacing / scale
    height, width = image_size(centre, scale, size_draw)
    p = _deform(geo)
    # Pose: size, a few degrees of head tilt, position in the cephalostat.
    size = 1.0 + 0.04 * float(np.clip(geo.standard_normal(), -2.5, 2.5))
    tilt = math.radians(2.5 * float(np.clip(geo.standard_normal(), -2.4, 2.4)))
    rot = size * np.array([[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]])
    shift = np.array(centre.sella_mm) + 6.0 * np.clip(geo.standard_normal(2), -2.5, 2.5)
    # Keep every landmark at least 10 mm inside the image.
    landmarks_mm = p[_LANDMARK_INDEX] @ rot.T + shift
    extent = np.array([width, height]) * spacing
    low, high = 10.0 - landmarks_mm.min(0), extent - 10.0 - landmarks_mm.max(0)
    shift += np.clip(0.0, low, np.maximum(low, high))

    def to_px(q: np.ndarray) -> np.ndarray:
        return (q @ rot.T + shift) / spacing

    ear = p[_INDEX["ear_c"]] @ rot.T + shift
    radius = size * float(np.linalg.norm(p[_INDEX["Po"]] - p[_INDEX["ear_c"]]))
    shapes = _anatomy(p) + _ear_rods(ear, radius)
    image = _render(shapes, to_px, (height, width), spacing, centre, pix)
    return SynthImage(image, to_px(p[_LANDMARK_INDEX]), spacing, centre.name)


def synthesize(
    out_dir: str | Path,
    n_images: int,
    n_test: int = 0,
    scale: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, SplitFiles]:
    """Write a synthetic release: ``train_stack.mha``, ``train-gt.json``, ``train-meta.json``
    (and the same for ``test`` when ``n_test`` > 0). Returns the files per split.
    ``progress`` shows a bar over the images of each split.
    """
    if n_images < 1 or n_test < 0:
        raise ValueError(f"need n_images >= 1 and n_test >= 0, got {n_images}, {n_test}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    out_dir = Path(out_dir)
    splits = {"train": (0, n_images), "test": (1, n_test)}
    return {
        name: _write_split(out_dir, name, split, n, scale, seed, progress)
        for name, (split, n) in splits.items()
        if n > 0
    }


def _write_split(
    out_dir: Path, name: str, split: int, n: int, scale: float, seed: int, progress: bool
) -> SplitFiles:
    records: list[ImageLandmarks] = []
    images: list[dict] = []

    def slices() -> Iterator[np.ndarray]:
        # Images are made while the stack is written: one full-size image in memory at a time.
        for i in tqdm(range(n), desc=f"{name} images", unit="img", disable=not progress):
            synth = generate_image(seed, split, i, scale)
            records.append(ImageLandmarks(z=i + 1, points=synth.points, spacing=synth.spacing))
            height, width = synth.image.shape
            images.append(
                dict(
                    z=i + 1, centre=synth.centre, height=height, width=width, spacing=synth.spacing
                )
            )
            yield synth.image

    files = SplitFiles(
        out_dir / f"{name}_stack.mha", out_dir / f"{name}-gt.json", out_dir / f"{name}-meta.json"
    )
    write_stack(files.stack, slices(), padded_size(scale), n_slices=n)
    write_gt(files.gt, records)
    header = json.dumps(dict(generator="cephalo.data.synth", seed=seed, scale=scale, split=name))
    lines = ",\n".join(json.dumps(image) for image in images)
    with atomic_open(files.meta, "w") as f:
        f.write(f'{header[:-1]}, "images": [\n{lines}\n]}}\n')
    return files
