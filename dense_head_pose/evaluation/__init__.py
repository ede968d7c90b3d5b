"""How good and how fast: accuracy on AFLW2000-3D, steadiness in video, stage timings.

:mod:`.aflw2000` scores the pipeline against labelled faces, :mod:`.stability` measures
jitter, lag and error of tracked video on synthetic clips, :mod:`.benchmark` tabulates
per-stage timings.
"""
