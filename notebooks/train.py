# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: cephalo (Python 3.11)
#     language: python
#     name: cephalo
# ---

# %% [markdown]
# # Train one model on one fold
#
# One run of the kit: train an RTMPose or HRNet variant on a fold's training images,
# keep the best checkpoint by the chosen metric, predict the held-out images (out-of-fold)
# and, when given, a test stack. Everything lands in `run_dir` (see `cephalo.runs.train`).
#
# `params` holds the training parameters (`cephalo.models.params.TrainParams`: model,
# input size, sigma, SimCC split ratio, codec, epochs, ...); anything not given keeps its
# default, and a misspelled name is an error. `fold = None` trains on every image.

# %% tags=["parameters"]
dataset_dir = None  # a prepared dataset folder; None: the built-in synthetic one
fold = 0  # the held-out fold; None: train on all images (full fit)
run_dir = None  # where the run writes; None: experiments/scratch/train
test_stack = None  # a release stack (.mha) to predict as well
test_gt = None  # its ground truth, if any (gives the test images their spacing)
trial = None  # set by `cephalo tune`: the Optuna trial each validation reports to (pruning)
show_plots = None  # None: unless a tuning trial runs the notebook (trials are scored, not read)
params = {
    "model": "rtmpose-tiny",
    "input_size": [128, 128],
    "epochs": 30,
    "lr": 0.005,
    "augmentation": 0.2,
    "num_workers": 0,
}

# %% tags=["setup"]
from pathlib import Path

from cephalo.data.default import synthetic_dataset
from cephalo.logs import show_logs
from cephalo.models.params import parse_params
from cephalo.runs.predict import stack_images
from cephalo.runs.train import run_fold
from cephalo.workspace import Workspace

show_logs()  # the kit's messages (resuming, the pretrained weights mapped) in the output

train_params = parse_params(params)
plotting = trial is None if show_plots is None else show_plots
dataset = Path(dataset_dir) if dataset_dir else synthetic_dataset(progress=False)
run = Path(run_dir) if run_dir else Workspace.default().outputs("scratch") / "train"
test = stack_images(test_stack, test_gt) if test_stack else None  # read slice by slice
train_params

# %% tags=["train"]
metrics = run_fold(train_params, dataset, fold, run, test_images=test, trial=trial)

# %% [markdown]
# ## How the run went

# %%
if plotting:
    from cephalo.reports import runs as plots

    curves = plots.training_curves(run)

# %% [markdown]
# ## Held-out fold against the mean-shape baseline

# %%
if plotting and fold is not None:
    from IPython.display import display

    display(plots.metrics_table(metrics))
    errors = plots.per_landmark_errors(metrics)
