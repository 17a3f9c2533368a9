"""The drawn anatomy: every outline a curve through the deformed control points (extrema
keep their head-frame tangents, so landmarks stay on the picture), teeth, and the ear rods."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cephalo.data.synth.skull import INDEX, VAULT, VAULT_CENTRE, rotate

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
    return rotate(e, np.zeros(2), tilt) + centre


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
class Shape:
    layer: str  # "soft", "bone" or "metal"
    pts: np.ndarray  # mm, head frame (image frame when ``image_frame``)
    value: float  # density added inside (fill) or along (stroke)
    width: float = 0.0  # mm; 0 fills the closed outline, > 0 strokes it
    closed: bool = True
    soft: float = 0.0  # mm of edge blur
    image_frame: bool = False


def anatomy(p: np.ndarray) -> list[Shape]:
    """Every drawn structure of the head, built from the deformed control points."""

    def at(name: str) -> np.ndarray:
        return p[INDEX[name]]

    def pts(names: str) -> np.ndarray:
        return p[[INDEX[n] for n in names.split()]]

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
        return _curve(p[[INDEX[n] for n in names]], tangents, closed)

    def fill(layer: str, outline: np.ndarray, value: float, soft: float = 0.0) -> None:
        shapes.append(Shape(layer, outline, value, soft=soft))

    def stroke(line: np.ndarray, value: float, width: float, closed: bool = False) -> None:
        shapes.append(Shape("bone", line, value, width=width, closed=closed))

    shapes: list[Shape] = []

    # Soft tissue: the head's outline (scalp 6 mm outside the vault), the airway cut out.
    out = [at(n) - VAULT_CENTRE for n in reversed(VAULT)]
    scalp = np.array([VAULT_CENTRE + v * (1 + 6.0 / np.linalg.norm(v)) for v in out])
    profile = c(
        "sf1 sG@90 sN@90 sd1 sd2 sd3 Prn@90 Cm Sn@c sA@90 UL@90 Sto@90 LL@90 sB@90 sPog@90 "
        "sMe@180 sm1 thr nf_1 nf_2",
        closed=False,
    )
    back = np.concatenate([pts("nb1 nb2 nb3"), scalp])
    fill("soft", np.concatenate([_curve(back, [None] * len(back), False), profile]), 1.0)
    fill("soft", c("aw_p1 aw_p2 aw_p3 aw_p4 aw_p5 aw_a5 aw_a4 aw_a3 aw_a2 aw_a1"), -0.6, 1.5)

    # Cranial vault: outer table closed through the cranial base, brain cavity cut out.
    vault = " ".join(reversed(VAULT))
    fill("bone", c(f"G@90 fn N@90 ob1 ob2 ob3 ob4 cl2 Ba@c Op vo10 {vault}"), 0.55)
    inner = np.array([VAULT_CENTRE + 0.93 * (at(n) - VAULT_CENTRE) for n in ("G", *VAULT)])
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
    shapes.append(Shape("bone", c(border, False, go=go_t), 0.25, 2.5, False, soft=0.5))
    fill("bone", c(f"{symphysis} Me@180 ls2 ls1 idl"), 0.3)
    shapes.append(Shape("bone", c("mc1 mc2 mc3", False), -0.12, 2.5, False, soft=0.8))  # canal
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


def _teeth(p: np.ndarray) -> list[Shape]:
    """Incisors, canines, premolars and molars, placed from the deformed landmarks."""

    def at(name: str) -> np.ndarray:
        return p[INDEX[name]]

    def anterior_normal(axis: np.ndarray) -> np.ndarray:
        normal = np.array([-axis[1], axis[0]])
        return normal if normal[0] > 0 else -normal

    shapes = []

    def add_tooth(outline: np.ndarray, crown: np.ndarray, value: float) -> None:
        shapes.append(Shape("bone", outline, value))
        shapes.append(Shape("bone", crown, 0.45))  # enamel

    for tip_name, apex_name in (("UIE", "UIA"), ("LIE", "LIA")):
        tip, apex = at(tip_name), at(apex_name)
        length = float(np.linalg.norm(apex - tip))
        axis = (apex - tip) / length
        size = length / 23.5
        add_tooth(*_tooth(tip, axis, anterior_normal(axis), _INCISOR, size, crown=10.5), 0.85)
        shapes.append(
            Shape("bone", np.array([tip + 3 * axis, apex - 1.5 * axis]), -0.3, 0.6, False)
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
            shapes += [Shape("bone", outline, 0.4), Shape("bone", crown, 0.25)]
    return shapes


def ear_rods(ear: np.ndarray, radius: float) -> list[Shape]:
    """The cephalostat's ear rods (image frame, mm): metal rings and the vertical holders.

    The near ring's outer edge has ``radius``; the far-side ring is magnified and offset.
    """
    shapes = []
    for offset, grow, value in ((np.zeros(2), 1.0, 1.6), (np.array([1.6, -1.1]), 1.08, 0.9)):
        centre = ear + offset
        r = radius * grow
        ring = _ellipse(centre, r - 0.6, r - 0.6)
        shapes.append(Shape("metal", ring, value, width=1.2, image_frame=True))
        bar = np.array([[-3.5, -1.0], [3.5, -1.0], [3.5, -400.0], [-3.5, -400.0]]) + centre
        shapes.append(Shape("metal", bar, 0.12, image_frame=True))
        shapes.append(Shape("metal", bar, 0.1, width=0.8, image_frame=True))
    return shapes
