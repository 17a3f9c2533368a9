"""A run's dumped ``config.py`` works with MMPose's own tools: in a fresh interpreter that
imports nothing of the kit but what the config's ``custom_imports`` name, MMEngine's Runner
tests the best checkpoint on the held-out fold (what ``tools/test.py`` does) and
``inference_topdown(init_model(config, checkpoint), image)`` predicts what the kit predicted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cephalo.predictions import load_predictions

pytestmark = pytest.mark.slow

CHILD = """
import json, sys
import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

run, checkpoint, image, bbox, out = sys.argv[1:]
config = Config.fromfile(f"{run}/config.py")  # imports the config's custom_imports
config.load_from = checkpoint                  # as tools/test.py does
config.work_dir = f"{out}-test"
metrics = Runner.from_cfg(config).test()

from mmpose.apis import inference_topdown, init_model
model = init_model(f"{run}/config.py", checkpoint, device="cpu")
result = inference_topdown(model, image, bboxes=np.array([json.loads(bbox)], np.float32))
keypoints = result[0].pred_instances.keypoints[0].tolist()
with open(out, "w") as f:
    json.dump(dict(metrics={k: float(v) for k, v in metrics.items()}, keypoints=keypoints), f)
"""


def test_mmpose_tools_run_a_runs_config(dataset, tmp_path):
    from cephalo.checkpoints import load_checkpoint_file
    from cephalo.data.prepared import load_images
    from cephalo.runs.train import run_fold
    from cephalo.runs.work_dir import best_checkpoint

    run = tmp_path / "run"
    params = dict(
        model="hrnet-tiny", input_size=(64, 64), epochs=2, batch_size=4, num_workers=0, lr=5e-3
    )
    metrics = run_fold(params, dataset, 0, run)
    config_text = (run / "config.py").read_text()
    for key in ("test_dataloader", "test_evaluator", "test_cfg", "cephalo.mmpose_plugins"):
        assert key in config_text, key

    oof = load_predictions(run / "predictions" / "oof.npz")
    image = {i.image_id: i for i in load_images(dataset)}[int(oof.image_id[0])]
    bbox = [0, 0, image.width - 1, image.height - 1]  # the kit's whole-image box
    out = tmp_path / "child.json"
    subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(run),
            str(best_checkpoint(run / "train")),
            str(dataset / "images" / image.file_name),
            json.dumps(bbox),
            str(out),
        ],
        check=True,
        cwd=tmp_path,
    )
    child = json.loads(out.read_text())
    # tools/test.py scores the held-out fold as the run's own validation did (on the images
    # training read: the training cache), for the checkpoint that validation chose
    saved = load_checkpoint_file(best_checkpoint(run / "train"))
    assert child["metrics"]["MRE"] == pytest.approx(
        saved["message_hub"]["runtime_info"]["best_score"], abs=1e-3
    )
    assert child["metrics"]["MRE"] == pytest.approx(metrics["MRE"], rel=0.05)  # at full size
    # Batched (the kit) and single-image (MMPose) inference round differently, and DARK's
    # refinement of a barely trained model's flat heatmaps magnifies that: 1/20 px, or 0.1 %
    # for the points such a model puts far outside the image.
    np.testing.assert_allclose(child["keypoints"], oof.coords[0], rtol=1e-3, atol=0.05)


def test_the_config_imports_register_the_safe_loader():
    """A fresh interpreter: importing the config's custom_imports is all it takes for
    torch's weights-only loading of MMEngine checkpoints."""
    code = (
        "from mmengine.runner.checkpoint import CheckpointLoader\n"
        "import cephalo.mmpose_plugins\n"
        "from cephalo.checkpoints import load_checkpoint_file\n"
        "assert CheckpointLoader._schemes[''] is load_checkpoint_file\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
