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
# # A miniature competition, start to finish
#
# The dataset, the study that tuned RTMPose, the fold models and how they rank, the ensemble
# built from them and the submission it wrote. `cephalo demo` executes this notebook and
# exports it to HTML beside the submission; point it at any other run of the recipe.

# %% tags=["parameters"]
dataset_dir = "data/demo/prepared"  # the prepared dataset
experiments = ["demo-tune-best", "demo"]  # the experiments whose runs are the members
registry = None  # the results registry; None: the checkout's (outputs/registry.db)
tuning_spec = "experiments/demo-tune.yaml"  # the tuning file (its default storage)
submission = "submissions/demo"  # the folder `cephalo ensemble` wrote

# %%
# %matplotlib inline
from cephalo.experiments import leaderboard
from cephalo.experiments.registry import read_runs
from cephalo.paths import REPO_ROOT
from cephalo.reports import ensemble as report
from cephalo.reports import explore
from cephalo.reports import runs as plots
from cephalo.reports.study import figures, trials_table
from cephalo.tuning.storage import load_study
from cephalo.workspace import Workspace

# %% [markdown]
# ## The data

# %%
data = explore.open_dataset(REPO_ROOT / dataset_dir)
explore.summary_table(data)

# %%
explore.plot_fold_balance(data)

# %% [markdown]
# ## The study

# %%
spec = REPO_ROOT / tuning_spec
study = load_study(Workspace.of_spec(spec).study_storage(spec.stem), spec.stem)
trials_table(study)

# %%
plots_of_study = figures(study)

# %% [markdown]
# ## The fold models: held-out scores against the mean-shape baseline

# %%
runs = read_runs(REPO_ROOT / registry if registry else Workspace.default().registry, experiments)
table = leaderboard.leaderboard(runs)
print(leaderboard.baseline_verdict(table))
table.round(3)

# %%
figure = plots.variant_scores(leaderboard.fold_scores(runs))

# %% [markdown]
# ## The ensemble: members and fusions out-of-fold
# Learned fusions are scored cross-validated: their weights never saw the images they are
# scored on.

# %%
result = report.EnsembleResult(REPO_ROOT / submission)
print(result.verdict())
print(result.tta_effect() or "no TTA views")
result.scores().round(3)

# %%
errors = result.errors()
figure = report.sdr_curves(errors)

# %%
figure = report.landmark_errors(errors)

# %% [markdown]
# ## The fusion's weights, member by landmark

# %%
if result.manifest["weights"] is None:
    print(f"the fusion '{result.manifest['fusion']}' has no weights")
else:
    figure = report.fusion_weights(result)

# %% [markdown]
# ## Where each landmark's error goes

# %%
figure = report.error_map(result)

# %% [markdown]
# ## The images the ensemble misses most (ground truth green, fusion red)

# %%
figure = report.worst_images(result)

# %% [markdown]
# ## The submission

# %%
print("files:", sorted(p.name for p in result.folder.iterdir() if p.is_file()))
print("test score:", result.manifest.get("test", "no ground truth"))
