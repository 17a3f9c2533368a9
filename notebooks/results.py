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
# # Results of the experiments
#
# What the results registry holds: every variant's held-out scores over its folds (the mean,
# the fold spread and each fold), where each variant errs by landmark, and the runs that
# failed. The registry is written by `cephalo run` (and `cephalo tune`); the same table
# prints with `cephalo leaderboard`.

# %% tags=["parameters"]
registry = None  # the registry file; None: the checkout's (outputs/registry.db)
experiments = None  # experiment names to show; None: all
metric = "MRE"  # what ranks the variants: MRE or "SDR 2.0mm" ... "SDR 4.0mm"

# %%
from IPython.display import display

from cephalo.experiments import leaderboard
from cephalo.experiments.registry import read_runs
from cephalo.reports import runs as plots
from cephalo.workspace import Workspace

runs = read_runs(registry or Workspace.default().registry, experiments)
leaderboard.status_counts(runs)

# %% [markdown]
# ## Leaderboard: fold means ± fold standard deviations

# %%
table = leaderboard.leaderboard(runs, metric)
table.round(3)

# %%
figure = plots.variant_scores(leaderboard.fold_scores(runs))

# %% [markdown]
# ## Error by landmark

# %%
figure = plots.landmark_heatmap(leaderboard.per_landmark(runs))

# %% [markdown]
# ## Failed runs
# Each run's executed notebook (`notebook.ipynb` in its folder) shows the failing cell.

# %%
display(runs.loc[runs["status"] == "failed", ["experiment", "run", "error", "run_dir"]])
