"""The ROS 2 layer over the core: nodes, message conversions, markers, TF, diagnostics.

Everything ROS-specific lives here; the rest of the package imports no ROS module.
"""
