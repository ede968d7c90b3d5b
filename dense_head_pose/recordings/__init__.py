"""Recordings processed offline: rosbag2 in, the node's outputs out.

:mod:`.rosbag_io` reads and writes rosbag2 (and ROS 1) files, damaged ones included;
:mod:`.processor` runs the estimator and tracker over one recording as the node would;
:mod:`.batch` processes many, in parallel; :mod:`.from_video` makes a recording of a video.
"""
