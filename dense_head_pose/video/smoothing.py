"""Smoothing of a tracked face: its 3DMM fit filtered by :mod:`.motion_filter`.

Per track, the fit's rotation (on the rotation manifold: samples are taken in the tangent
space of the current estimate), its image position and scales (hence the metric translation
and depth), the small shear of its affine camera, and its expression and identity
coefficients are filtered together; the landmarks, the dense vertices, the angles and the
metric pose are then all rebuilt from the filtered camera and coefficients, so every output
of a face agrees with every other and the landmarks stay on a face.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ..options import check_fields
from ..pipeline.estimator import Fit
from ..pipeline.pose import exp_rotation, log_rotation, view_rotation
from .motion_filter import REFERENCE_SIDE, MotionFilter, MotionParams

#: The filtered quantities, in the order of the CLI's and the node's parameters.
QUANTITIES = ("rotation", "translation", "depth", "shear", "expression", "shape")


@dataclass(frozen=True)
class SmoothingOptions:
    """Filter parameters per quantity (see :class:`~.motion_filter.MotionParams`), each in
    its own units: ``rotation`` degrees; ``translation`` face sizes (the crop's side) in the
    image; ``depth`` the natural log of the face's scale; ``shear`` the small shear of the
    network's affine camera (a property of the fit, like the identity), relative units;
    ``expression`` and ``shape`` the 3DMM's coefficient units. ``switch_rate``: how often
    (per second) a head is expected to start or stop moving; lower holds each state longer.
    The defaults are the ones ``dense-head-pose stability`` measured best
    (``docs/video.md``)."""

    rotation: MotionParams = MotionParams(noise=0.2, drift=0.02, acceleration=180.0)
    translation: MotionParams = MotionParams(noise=0.003, drift=3e-5, acceleration=5.0)
    depth: MotionParams = MotionParams(noise=0.005, drift=3e-5, acceleration=0.1)
    shear: MotionParams = MotionParams(noise=0.003, drift=1e-5, acceleration=0.03)
    expression: MotionParams = MotionParams(noise=0.03, drift=3e-4, acceleration=3.0)
    shape: MotionParams = MotionParams(noise=2000.0, drift=0.03, acceleration=1000.0)
    switch_rate: float = 0.3

    KINDS: ClassVar[dict[str, type]] = {"switch_rate": float}
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"switch_rate": (1e-6, 1000.0)}

    def __post_init__(self) -> None:
        check_fields(self, self.KINDS, self.LIMITS)
        for name in QUANTITIES:
            if not isinstance(getattr(self, name), MotionParams):
                raise TypeError(f"smoothing.{name} must be MotionParams")


# where each quantity sits in the filtered vector
_ROT, _POS, _SCALE, _SHEAR_AT = slice(0, 3), slice(3, 5), slice(5, 8), slice(8, 17)
_SHAPE, _EXPR = slice(17, 57), slice(57, 67)
_SIGNS = np.array([1.0, 1.0, -1.0])


@dataclass(frozen=True)
class Estimate:
    """A face's filtered state at one instant, in a form two estimates can be combined in
    (:func:`combine`): the rotation, the other numbers in the filter's units (position,
    log scales, shear, identity and expression coefficients), and the variance of each
    number (the rotation's three first, about the rotation's own axes)."""

    rotation: np.ndarray
    linear: np.ndarray
    variance: np.ndarray


def combine(a: Estimate, b: Estimate) -> Estimate:
    """Two independent estimates of the same instant made one, each number weighted by the
    inverse of its variance (the rotation along the geodesic between the two)."""
    va, vb = a.variance, b.variance
    weight_b = va / np.maximum(va + vb, 1e-300)
    delta = log_rotation(a.rotation.T @ b.rotation)
    rotation = a.rotation @ exp_rotation(weight_b[_ROT] * delta)
    linear = a.linear + weight_b[3:] * (b.linear - a.linear)
    return Estimate(rotation, linear, va * vb / np.maximum(va + vb, 1e-300))


class FitSmoother:
    """The filter of one face's fit (see module)."""

    def __init__(self, options: SmoothingOptions) -> None:
        self.filter = MotionFilter([(3, options.rotation, math.radians(1.0)),
                                    (2, options.translation),
                                    (3, options.depth), (9, options.shear), (40, options.shape),
                                    (10, options.expression)], options.switch_rate)
        self._base: np.ndarray | None = None  # the rotation the tangent space is taken at

    @property
    def moving(self) -> bool:
        """Whether the filter takes the head's rotation to be moving."""
        return bool(self.filter.still_probability[0] < 0.5)

    def __call__(self, fit: Fit, t: float,
                 project: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Fit:
        """The filtered fit at ``t``: camera rebuilt from the filtered rotation, scales,
        shear and position, coefficients filtered, landmarks re-projected with ``project``."""
        rotation, linear = self.observe(fit, t)
        return fit_from(fit, rotation, linear, project)

    def observe(self, fit: Fit, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Take the fit at ``t``; the filtered rotation and other numbers (no fit rebuilt:
        for a caller that only needs the state, :attr:`estimate`)."""
        rot, z, scales = _sample(fit)
        if self._base is None or self.filter.x.size == 0:
            self._base = rot
        z[_ROT] = log_rotation(self._base.T @ rot)
        x = self.filter(z, t, scales)
        out_rot = self._base @ exp_rotation(x[_ROT])
        # the next sample is taken in the tangent space of this estimate
        self.filter.shift(_ROT, x[_ROT])
        self._base = out_rot
        return out_rot, x[3:]

    @property
    def estimate(self) -> Estimate | None:
        """The state after the last sample (None before the first)."""
        if self._base is None or self.filter.x.size == 0:
            return None
        return Estimate(self._base, self.filter.x[3:].copy(), self.filter.variance)

    def predicted(self, t: float) -> Estimate | None:
        """The state predicted at ``t`` from the samples so far, without a sample there
        (None if there is nothing to predict from; see :meth:`MotionFilter.predicted`)."""
        if self._base is None:
            return None
        found = self.filter.predicted(t)
        if found is None:
            return None
        x, variance = found
        return Estimate(self._base @ exp_rotation(x[_ROT]), x[3:], variance)


def _sample(fit: Fit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fit as the filter takes it: its rotation, the sample (the rotation's part left at
    zero, for the caller's tangent space) and the noise scale of each group."""
    rot, sx, sy = view_rotation(fit.camera)
    sz = float(np.linalg.norm(fit.camera[2, :3]))
    # the camera's 3x3 part in the face's own axes: scales on the diagonal (the image
    # depth axis points back), and the small shear of the network's affine camera, which
    # is part of the fit (dropping it costs landmark accuracy)
    local = fit.camera[:, :3] @ rot.T
    shear = local / (_SIGNS * np.array([sx, sy, sz]))[:, None] - np.eye(3)
    side = float(fit.roi[2] - fit.roi[0])
    # image noise is about constant in pixels, so in face units it grows as the face
    # shrinks (see motion_filter.REFERENCE_SIDE)
    noise = max(1.0, REFERENCE_SIDE / max(side, 1.0))
    z = np.concatenate([np.zeros(3), fit.camera[:2, 3], np.log([sx, sy, sz]),
                        shear.reshape(-1), fit.params[12:52], fit.params[52:62]])
    return rot, z, np.array([noise, noise * side, noise, noise, noise, noise])


def fit_from(fit: Fit, rotation: np.ndarray, linear: np.ndarray,
             project: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Fit:
    """``fit`` with the camera and coefficients of a filtered state (``rotation`` and the
    other numbers, :class:`Estimate`), landmarks re-projected with ``project``."""
    x = np.concatenate([np.zeros(3), linear])
    params = fit.params.copy()
    params[12:52] = x[_SHAPE]
    params[52:62] = x[_EXPR]
    camera = np.zeros((3, 4))
    camera[:, :3] = (_SIGNS * np.exp(x[_SCALE]))[:, None] * (
        np.eye(3) + x[_SHEAR_AT].reshape(3, 3)) @ rotation
    camera[:2, 3] = x[_POS]
    return replace(fit, params=params, camera=camera, landmarks=project(params, camera))
