"""cephalo: a Kaggle-style experiment kit for cephalometric landmark detection.

Built around the CL-Detection 2023 challenge (38 landmarks on lateral skull X-rays, scored
by mean radial error in mm and success detection rates within 2 / 2.5 / 3 / 4 mm), on top
of MMPose (RTMPose / SimCC and HRNet heatmap models), Optuna and papermill.
"""

__version__ = "0.1.0"
