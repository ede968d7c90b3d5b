"""Video: frames in and out, faces tracked and smoothed from frame to frame.

:mod:`.sources` reads videos, cameras and folders; :mod:`.writer` writes drawn videos;
:mod:`.tracking` (``FaceTracker``) follows faces between detections and smooths them with
:mod:`.smoothing` (the filter is :mod:`.motion_filter`); :mod:`.streams` keeps a tracker per
camera of one stream.
"""
