"""Smoothing of a tracked face: One-Euro filters of its 3DMM fit.

Per track, the fit's rotation is filtered on the rotation manifold, its image position and
scale (hence the metric translation and depth), and its expression and identity
coefficients; the landmarks, the dense vertices, the angles and the metric pose are then all
rebuilt from the filtered camera and coefficients, so every output of a face agrees with
every other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..pipeline.estimator import Fit
from ..pipeline.pose import view_rotation
from .one_euro import OneEuroFilter, OneEuroParams, RotationOneEuroFilter

#: The filtered quantities, in the order of the CLI's and the node's parameters.
QUANTITIES = ("rotation", "translation", "depth", "expression", "shape")


@dataclass(frozen=True)
class SmoothingOptions:
    """One-Euro parameters per quantity (see :class:`~.one_euro.OneEuroParams`).

    Speeds are in rad/s (rotation), face sizes or scale e-folds per second (translation),
    coefficient units per second (expression, shape). The defaults are the ones
    ``dense-head-pose stability`` measured best (``docs/video.md``).
    """

    rotation: OneEuroParams = OneEuroParams(min_cutoff=0.3, beta=30.0, d_cutoff=2.0,
                                            min_speed=0.2)
    translation: OneEuroParams = OneEuroParams(min_cutoff=0.3, beta=200.0, d_cutoff=2.0,
                                               min_speed=0.1)
    depth: OneEuroParams = OneEuroParams(min_cutoff=0.3, beta=20.0, d_cutoff=1.0,
                                         min_speed=0.1)
    expression: OneEuroParams = OneEuroParams(min_cutoff=1.5, beta=0.5, d_cutoff=2.0)
    shape: OneEuroParams = OneEuroParams(min_cutoff=0.3, beta=0.0, d_cutoff=1.0)

    def __post_init__(self) -> None:
        for name in QUANTITIES:
            if not isinstance(getattr(self, name), OneEuroParams):
                raise TypeError(f"smoothing.{name} must be OneEuroParams")




#: Crop side (pixels) at and above which the filters' ``min_speed`` applies as set; a
#: smaller face's crop scales it up by this side over its own: image noise is about
#: constant in pixels, so in face units it grows as the face shrinks.
FACE_SIDE_AT_REST = 250.0


class FitSmoother:
    """The One-Euro filters of one face: rotation, position and scale, coefficients."""

    reference_side = FACE_SIDE_AT_REST

    def __init__(self, options: SmoothingOptions) -> None:
        self.rotation = RotationOneEuroFilter(options.rotation)
        self.position = OneEuroFilter(options.translation)
        self.scale = OneEuroFilter(options.depth)
        self.expression = OneEuroFilter(options.expression)
        self.shape = OneEuroFilter(options.shape)
        self.shear = OneEuroFilter(options.shape)  # a property of the fit, like identity

    def __call__(self, fit: Fit, t: float, project: Any) -> Fit:
        """The filtered fit at ``t``: camera rebuilt from the filtered rotation, scales and
        position, coefficients filtered, landmarks re-projected with ``project``."""
        raw_rot, sx, sy = view_rotation(fit.camera)
        sz = float(np.linalg.norm(fit.camera[2, :3]))
        # the camera's 3x3 part in the face's own axes: scales on the diagonal (the image
        # depth axis points back), and the small shear of the network's affine camera, which
        # is part of the fit (dropping it costs landmark accuracy)
        local = fit.camera[:, :3] @ raw_rot.T
        signs = np.array([1.0, 1.0, -1.0])
        shear = local / (signs * np.array([sx, sy, sz]))[:, None] - np.eye(3)
        side = float(fit.roi[2] - fit.roi[0])
        # image noise is about constant in pixels, so in face units it grows as the face
        # shrinks: what counts as rest grows with it (see FACE_SIDE_AT_REST)
        rest = max(1.0, self.reference_side / max(side, 1.0))
        rot = self.rotation(raw_rot, t, rest)
        origin = self.position(fit.camera[:2, 3], t, speed_unit=side, rest_scale=rest)
        scales = np.exp(self.scale(np.log([sx, sy, sz]), t, rest_scale=rest))
        shear = self.shear(shear.reshape(1, -1), t, rest_scale=rest).reshape(3, 3)
        params = fit.params.copy()
        params[12:52] = self.shape(fit.params[12:52], t, rest_scale=rest)
        params[52:62] = self.expression(fit.params[52:62], t, rest_scale=rest)
        camera = np.zeros((3, 4))
        camera[:, :3] = (signs * scales)[:, None] * (np.eye(3) + shear) @ rot
        camera[:2, 3] = origin
        return replace(fit, params=params, camera=camera, landmarks=project(params, camera))
