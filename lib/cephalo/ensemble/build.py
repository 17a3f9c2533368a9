"""``cephalo ensemble`` and ``cephalo predict --ensemble``: members -> fusion fitted on OOF
-> submission.

The ensemble file (:mod:`cephalo.ensemble.spec`) names the members; their predictions come
from :mod:`cephalo.ensemble.inference` and are fused by :mod:`cephalo.ensemble.fused`.
Every fusion is scored on the out-of-fold predictions, the learned ones cross-validated
over the dataset's folds (weights fitted without the images they are scored on); the chosen
one is refitted on all OOF images and applied to the test stack. ``cephalo predict`` redoes
the test part from the submission's manifest alone, as the challenge's container would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cephalo.challenge.points import write_json
from cephalo.challenge.submission import MANIFEST, read_submission_manifest, write_submission
from cephalo.data.prepared import load_folds, load_images
from cephalo.ensemble import fusion
from cephalo.ensemble.fused import (
    WITHOUT_TTA,
    fuse,
    fused_out_of_fold,
    member_coords,
)
from cephalo.ensemble.inference import oof_predictions, test_predictions
from cephalo.ensemble.members import load_members, member_entry
from cephalo.ensemble.spec import members_of, read_ensemble_spec
from cephalo.files import atomic_open, dump_json
from cephalo.metrics import MRE, radial_errors, summarize
from cephalo.tta import IDENTITY
from cephalo.workspace import Workspace

OOF_FILE = "oof.npz"


def build_ensemble(spec_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict:
    """Fit and score the fusions on OOF, write the submission; returns the manifest."""
    spec_path, out = Path(spec_path).resolve(), Path(out)
    spec = read_ensemble_spec(spec_path)
    registry = spec.registry or Workspace.of_spec(spec_path).registry
    members = members_of(spec, registry)
    raw = spec.distribution or spec.fusion == fusion.DISTRIBUTION
    oof = oof_predictions(members, out / "cache", raw)
    ids = oof[0].image_id
    coords, _ = member_coords([[p] for p in oof])

    dataset = members[0].runs[0].dataset_dir
    images = {i.image_id: i for i in load_images(dataset)}
    truth = np.stack([images[i].points for i in ids])
    spacing = np.array([images[i].spacing for i in ids])
    folds = load_folds(dataset).set_index("image_id").loc[ids, "fold"].to_numpy()

    scores = {
        m.name: summarize(radial_errors(coords[j], truth, spacing)) for j, m in enumerate(members)
    }
    fused_oof = {}
    for method in fusion.METHODS + ((fusion.DISTRIBUTION,) if raw else ()):
        fused_oof[method] = fused_out_of_fold(method, members, oof, truth, spacing, folds)
        scores[f"fusion: {method}"] = summarize(radial_errors(fused_oof[method], truth, spacing))
    plain = [j for j, m in enumerate(members) if m.view == IDENTITY]
    if 0 < len(plain) < len(members):  # the same fusion of the members' identity views
        without = fused_out_of_fold(
            spec.fusion, [members[j] for j in plain], [oof[j] for j in plain], truth, spacing, folds
        )
        scores[f"{WITHOUT_TTA}{spec.fusion}"] = summarize(radial_errors(without, truth, spacing))
    weights = None
    if spec.fusion in fusion.LEARNED:
        weights = fusion.FITTERS[spec.fusion](coords, truth, spacing)
    manifest: dict[str, Any] = dict(
        spec=str(spec_path),
        fusion=spec.fusion,
        raw=raw,
        test_models=spec.test_models,
        members=[member_entry(m) for m in members],
        weights=None if weights is None else weights.tolist(),
        oof=scores,
    )
    if spec.test:
        manifest["test_stack"] = str(spec.test.stack)
        test = test_predictions(members, spec.test.stack, spec.test.gt, out / "cache", raw)
        slices, sizes = test[0][0].image_id, test[0][0].image_size
        submitted = fuse(spec.fusion, members, test, weights)
        if spec.test.gt:
            manifest["test"] = _score_test(spec.test.gt, slices, submitted)

    # Every prediction is made: the files are written, the manifest last. While it is
    # missing the folder is a submission in the making (a kill from here on leaves no old
    # manifest describing new files).
    (out / MANIFEST).unlink(missing_ok=True)
    with atomic_open(out / OOF_FILE, "wb") as f:
        np.savez_compressed(
            f,
            image_id=ids,
            members=np.array([m.name for m in members]),
            coords=coords,
            fused=fused_oof[spec.fusion],
            truth=truth,
            spacing=spacing,
            fold=folds,
        )
    if spec.test:
        write_submission(out, slices, submitted, sizes, manifest)
    else:
        dump_json(out / MANIFEST, manifest)
    return manifest


def _score_test(gt: Path, slices: np.ndarray, coords: np.ndarray) -> dict[str, float]:
    from cephalo.data.release import read_gt

    records = {r.z: r for r in read_gt(gt)}
    truth = np.stack([records[int(z)].points for z in slices])
    spacing = np.array([records[int(z)].spacing for z in slices])
    return summarize(radial_errors(coords, truth, spacing))


def scores_table(manifest: dict[str, Any]) -> pd.DataFrame:
    """Members and fusions side by side, by OOF MRE."""
    table = pd.DataFrame(manifest["oof"]).T
    return table.sort_values(MRE)


def predict_stack(ensemble: Path, stack: Path, out: Path) -> Path:
    """The submission's ensemble on a stack: every member with its view, fused with the
    stored weights, written as the challenge's JSON and validated."""
    from cephalo.challenge.submission import validate

    manifest = read_submission_manifest(ensemble)
    members = load_members(manifest)
    test = test_predictions(members, stack, None, raw=manifest["raw"])
    slices, sizes = test[0][0].image_id, test[0][0].image_size
    weights = np.array(manifest["weights"]) if manifest["weights"] is not None else None
    fused = fuse(manifest["fusion"], members, test, weights)
    write_json(out, slices, fused)
    validate(out, slices, sizes)
    return out
