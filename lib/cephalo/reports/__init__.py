"""Figures and tables for the notebooks, one module per thing looked at: a prepared dataset
(:mod:`~cephalo.reports.explore`), runs and the variants across them
(:mod:`~cephalo.reports.runs`), a study (:mod:`~cephalo.reports.study`) and an ensemble
(:mod:`~cephalo.reports.ensemble`). Each function returns a figure or a table and shows
nothing: the notebook decides."""
