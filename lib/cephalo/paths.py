"""Where things live in a checkout of the kit: the folder layout follows the data's path
(raw release -> prepared dataset -> runs -> studies -> ensemble -> submission)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "data"  # releases and prepared datasets (not committed)
NOTEBOOKS = REPO_ROOT / "notebooks"
EXPERIMENTS = REPO_ROOT / "experiments"
SUBMISSIONS = REPO_ROOT / "submissions"
LOCK_FILE = REPO_ROOT / "requirements" / "constraints.txt"
