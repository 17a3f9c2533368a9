"""Tuning: Optuna studies whose trials are papermill runs of the training notebook, pruned
from inside the running notebook, in a real database shared by any number of workers."""
