"""Experiments: specs expanded into papermill runs, a resumable batch runner, and the
results registry and leaderboard over every run."""
