"""The simulated acquisition sites: detector size, pixel spacing and how each exposes (see
the package docstring's table)."""

from __future__ import annotations

from dataclasses import dataclass

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
