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

from cephalo.data.synth.centres import CENTRES, PADDED_HW, Centre
from cephalo.data.synth.skull import LANDMARKS
from cephalo.data.synth.writer import (
    SplitFiles,
    SynthImage,
    generate_image,
    image_size,
    padded_size,
    synthesize,
)

__all__ = [
    "CENTRES",
    "LANDMARKS",
    "PADDED_HW",
    "Centre",
    "SplitFiles",
    "SynthImage",
    "generate_image",
    "image_size",
    "padded_size",
    "synthesize",
]
