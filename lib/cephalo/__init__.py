"""cephalo: a Kaggle-style experiment kit for cephalometric landmark detection.

Built around the CL-Detection 2023 challenge (38 landmarks on lateral skull X-rays, scored
by mean radial error in mm and success detection rates within 2 / 2.5 / 3 / 4 mm), on top
of MMPose (RTMPose / SimCC and HRNet heatmap models), Optuna and papermill.

Packages along the data path: ``data`` (a release -> a prepared dataset, folds, the
synthetic release), ``models`` (parameters -> an MMEngine config, the zoo, pretrained
weights), ``runs`` (one model on one fold and the folder it leaves), ``experiments``
(batches of runs, the registry), ``tuning`` (Optuna studies), ``ensemble`` (members x views
-> one fusion), ``challenge`` (its prediction file, evaluation, the submission),
``container`` (a submission as the challenge's image), ``reports`` (figures and tables for
notebooks) and ``cli`` (one module per stage). Shared vocabulary sits beside them:
``landmarks``, ``metrics``, ``run_states``, ``predictions``, ``errors``, ``workspace`` (where
a spec's outputs go).
"""

__version__ = "0.1.0"
