"""The per-image pipeline: detection, alignment, the morphable model, pose and drawing.

:mod:`.estimator` puts the parts together (``HeadPoseEstimator``): :mod:`.detection` finds
faces, :mod:`.alignment` crops each and regresses its 3DMM parameters, :mod:`.morphable_model`
(with :mod:`.dense_product`) turns them into landmarks and vertices, :mod:`.pose` into head
pose, :mod:`.results` holds what comes out; :mod:`.drawing` and :mod:`.render` draw it.
"""
