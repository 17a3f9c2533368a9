"""The model zoo: RTMPose (SimCC) and HRNet (heatmap) variants built by name into complete
MMEngine configs from a small set of validated parameters."""
