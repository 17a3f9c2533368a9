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
# # Exploring a prepared dataset
#
# What the data hold before any model sees them: the acquisition groups (image size and
# spacing, standing for the centre) and how they differ, where the landmarks sit and how much
# they vary, and whether the cross-validation folds mix the groups evenly. Every number and
# figure comes from `cephalo.reports.explore`; this notebook only calls it.
#
# Run it on another prepared folder with
# `cephalo.notebooks.execute("explore_data", "explore.ipynb", {"dataset_dir": "data/..."})`.

# %% tags=["parameters"]
dataset_dir = None  # a prepared dataset folder, or None for the built-in synthetic one
n_examples = 6  # example images to draw
seed = 0  # which examples are drawn

# %%
# %matplotlib inline
from cephalo.reports import explore

data = explore.open_dataset(dataset_dir)
explore.overview(data)

# %% [markdown]
# ## Acquisition groups
#
# One row per group: image count, size in pixels and in millimetres, pixel spacing, the
# pooled grey-level mean and standard deviation, and landmarks per image. Groups with few
# images are the ones a fold can miss and a model can underfit.

# %%
explore.summary_table(data)

# %% [markdown]
# ## Example images
#
# A few images taken in turn from each group, landmarks numbered 1..K, with a 20 mm scale
# bar. Axes are in the image's own pixels.

# %%
explore.plot_examples(data, n_examples, seed)

# %% [markdown]
# ## Landmark positions
#
# All images' landmarks in millimetres, first relative to landmark 1 (sella) with the head
# pose left as it is, then rigidly aligned (rotation and translation, no scaling) onto the
# mean shape. The black points are the mean shape; a wide cloud after alignment is a
# landmark whose position varies between people, not just between poses.

# %%
explore.plot_landmark_cloud(data, "sella")

# %%
explore.plot_landmark_cloud(data, "procrustes")

# %% [markdown]
# Per landmark: its name (the organisers'; on synthetic data, 20-38 are the generator's own
# placements), the mean position relative to sella, and the spread (root mean square
# distance to the mean, mm) relative to sella and after rigid alignment. Sorted by the
# aligned spread, most variable first.

# %%
explore.landmark_table(data).sort_values("spread_aligned_mm", ascending=False)

# %% [markdown]
# ## Spacing and field of view
#
# The metric is in millimetres, so an image's spacing converts every pixel error. Groups
# with a coarser spacing give larger errors for the same error in pixels.

# %%
explore.plot_geometry(data)

# %% [markdown]
# ## Intensity
#
# Grey-level histograms per group (line: all pixels of the group; band: 10-90 % of the
# images) and each image's brightness against its contrast. Groups that separate here are a
# domain shift that intensity augmentation or normalisation has to bridge.

# %%
explore.plot_intensity(data)

# %% [markdown]
# ## Fold balance
#
# Images per group in each cross-validation fold (stratified by group) and in the
# organisers' fixed train / val / test split, which is not stratified.

# %%
explore.fold_balance(data, "fold")

# %%
explore.fold_balance(data, "organiser_split")

# %%
explore.plot_fold_balance(data)
