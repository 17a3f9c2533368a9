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
# # An ensemble
#
# What `cephalo ensemble` built: every member (variant x TTA view) and every fusion scored
# on the out-of-fold predictions (learned fusions cross-validated over the folds, so their
# scores are not measured on the images they were fitted to), the submitted fusion against
# the best member by landmark and by success rate, and the images it misses most.

# %% tags=["parameters"]
submission = "submissions/demo"  # a folder written by `cephalo ensemble`

# %%
from cephalo.paths import REPO_ROOT
from cephalo.reports import ensemble as report

result = report.EnsembleResult(REPO_ROOT / submission)
result.scores().round(3)

# %% [markdown]
# ## Weights and test score

# %%
print("fusion:", result.manifest["fusion"])
print("test:", result.manifest.get("test", "no ground truth for the test stack"))

# %% [markdown]
# ## Best member against the fusion

# %%
errors = result.errors()
figure = report.landmark_errors(errors)

# %%
figure = report.sdr_curves(errors)

# %% [markdown]
# ## The worst images (ground truth green, fusion red)

# %%
figure = report.worst_images(result)
