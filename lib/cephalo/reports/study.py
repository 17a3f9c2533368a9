"""A study's results for notebooks and reports: the trials as a table and Optuna's plots
(matplotlib, so they survive papermill, HTML export and review without JavaScript)."""

from __future__ import annotations

import warnings

import optuna
import pandas as pd
from optuna.visualization import matplotlib as optuna_plots


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, parameters, duration, error."""
    table = study.trials_dataframe(attrs=("number", "state", "value", "params", "duration"))
    table["error"] = [t.user_attrs.get("error", "") for t in study.trials]
    return table.set_index("number")


def figures(study: optuna.Study, contour: tuple[str, str] = ("input_size", "sigma")) -> dict:
    """Title -> matplotlib Figure of what the study can show so far: history, intermediate
    values (what pruning saw), parameter importances and a contour of two parameters."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    plots = {"optimization history": lambda: optuna_plots.plot_optimization_history(study)}
    if any(t.intermediate_values for t in study.trials):
        plots["intermediate values"] = lambda: optuna_plots.plot_intermediate_values(study)
    varied = {
        name
        for name in {n for t in complete for n in t.params}
        if len({str(t.params.get(name)) for t in complete}) > 1
    }
    if len(complete) >= 2 and varied:
        plots["parameter importances"] = lambda: optuna_plots.plot_param_importances(study)
    if len(complete) >= 2 and set(contour) <= varied:
        plots[f"{contour[0]} x {contour[1]}"] = lambda: optuna_plots.plot_contour(
            study, params=list(contour)
        )
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for title, plot in plots.items():
            axes = plot()
            figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
            figure.suptitle(title)
            result[title] = figure
    return result
