"""The skull in millimetres: named control points in the head frame (origin at sella, x
anterior, y inferior), the 38 landmarks among them, and the shape modes that move groups of
them from image to image."""

from __future__ import annotations

import math

import numpy as np

from cephalo.landmarks import NUM_LANDMARKS

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
INDEX = {name: i for i, name in enumerate(_NAMES)}
_BASE = np.array([(x, y) for x, y, _ in _POINTS.values()], dtype=np.float64)
_GROUP = np.array([g for _, _, g in _POINTS.values()])
LANDMARK_INDEX = np.array([INDEX[name] for name, _, _ in LANDMARKS])
VAULT = ("vo1", "vo2", "vo3", "vo4", "vo5", "vo6", "vo7", "vo8", "vo9")
VAULT_CENTRE = np.array([-18.0, -25.0])


def rotate(p: np.ndarray, about: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (p - about) @ rot.T + about


def deform(rng: np.random.Generator) -> np.ndarray:
    """The control points after this image's shape modes (mm, head frame)."""
    p = _BASE.copy()

    def z(sd: float) -> float:
        # Clipped so that no mode can fold the anatomy (e.g. A in front of ANS).
        return sd * float(np.clip(rng.standard_normal(), -2.5, 2.5))

    def sel(*groups: str) -> np.ndarray:
        return np.isin(_GROUP, groups)

    def at(name: str) -> np.ndarray:
        return p[INDEX[name]].copy()

    ui, li = sel("upper_incisor"), sel("lower_incisor")
    tips = at("UIE"), at("LIE")
    p[ui] = rotate(p[ui], at("UIA"), z(4.0))  # incisor inclination
    p[li] = rotate(p[li], at("LIA"), z(4.0))
    # The lips rest on the incisors: they follow half of the tips' movement.
    p[[INDEX["UL"], INDEX["Sto"]]] += 0.5 * (at("UIE") - tips[0])
    p[INDEX["LL"]] += 0.5 * (at("LIE") - tips[1])
    ramus = sel("ramus")
    p[ramus] = rotate(p[ramus], at("Go"), z(2.5))  # gonial angle
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
    p[basi] = rotate(p[basi], np.zeros(2), z(2.5))  # cranial base angle
    for group, sd in (("soft_upper", 1.2), ("soft_lower", 1.5), ("soft_cranium", 0.8)):
        p[sel(group), 0] += z(sd)  # soft-tissue thickness
    nose = sel("nose", "nose_tip")
    p[nose, 0] += z(2.5) * np.clip((p[nose, 0] - 80.0) / 23.0, 0, 1)  # nose size
    # Stomion is where the lips meet, behind both whatever the modes did to them.
    lips = min(p[INDEX["UL"], 0], p[INDEX["LL"], 0])
    p[INDEX["Sto"], 0] = min(p[INDEX["Sto"], 0], lips - 3.0)
    return p
