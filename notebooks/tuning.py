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
# # An Optuna study
#
# The trials of a study run by `cephalo tune`: how the objective improved, what the pruner
# saw of each trial, which parameters mattered, and how input size and sigma interact. The
# same study is live in `cephalo dashboard`.

# %% tags=["parameters"]
spec = "experiments/tune-rtmpose-cpu.yaml"  # the tuning file
storage = None  # the study's storage URL; None: the spec's default (SQLite beside it)
study_name = None  # None: the spec's file name

# %%

from cephalo.paths import REPO_ROOT
from cephalo.reports.study import figures, trials_table
from cephalo.tuning.storage import load_study
from cephalo.workspace import Workspace

spec_path = (REPO_ROOT / spec).resolve()
study = load_study(
    storage or Workspace.of_spec(spec_path).study_storage(spec_path.stem),
    study_name or spec_path.stem,
)
trials_table(study)

# %% [markdown]
# ## Best trial

# %%
best = study.best_trial
print(f"trial {best.number}: {study.user_attrs.get('objective', 'value')} {best.value:.3f}")
best.user_attrs["params"]

# %% [markdown]
# ## Plots

# %%
plots = figures(study)
