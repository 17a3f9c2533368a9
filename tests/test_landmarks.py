"""The landmark table: the organisers' 38 names, ISBI 2015's 19 as its first rows, and the
label every per-landmark figure and table shows."""

from __future__ import annotations

from cephalo.landmarks import (
    ANATOMY,
    ISBI_ANATOMY,
    LANDMARK_NAMES,
    NUM_LANDMARKS,
    landmark_label,
    landmark_labels,
)


def test_the_organisers_names_in_their_order():
    assert NUM_LANDMARKS == len(LANDMARK_NAMES) == 38
    assert ANATOMY[0] == ("Sella", "S") and ANATOMY[1] == ("Nasion", "N")
    assert ANATOMY[18] == ("Articulare", "Ar") and ANATOMY[37] == ("Lower molar", "L6")
    assert len({abbreviation for _, abbreviation in ANATOMY}) == 38


def test_isbi_is_the_first_19():
    assert ANATOMY[:19] == ISBI_ANATOMY and len(ISBI_ANATOMY) == 19


def test_labels_put_the_number_beside_the_name():
    assert landmark_label("1") == "1 Sella (S)"
    assert landmark_label(16) == "16 Soft-tissue pogonion (Pog')"
    assert landmark_labels(["3", "39", "x"]) == ["3 Orbitale (Or)", "39", "x"]


def test_evaluate_tables_show_labels(tmp_path):
    import numpy as np

    from cephalo.challenge.evaluate import evaluate_files, format_report
    from cephalo.challenge.points import write_json
    from cephalo.data.release import ImageLandmarks, write_gt

    rng = np.random.default_rng(1)
    records = [ImageLandmarks(z, rng.uniform(10, 90, (38, 2)), 0.1) for z in (1, 2)]
    gt = write_gt(tmp_path / "gt.json", records)
    pred = write_json(
        tmp_path / "pred.json", np.array([1, 2]), np.stack([r.points + 5 for r in records])
    )
    text = format_report(evaluate_files(pred, gt))
    assert "1 Sella (S)" in text and "38 Lower molar (L6)" in text
