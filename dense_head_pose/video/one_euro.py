"""One-Euro filters (Casiez, Roussel and Vogel, CHI 2012) for vectors and for rotations.

A One-Euro filter is a first-order low-pass whose cutoff rises with the signal's speed:
``cutoff = min_cutoff + beta * |speed|``. At rest the cutoff is low and jitter is smoothed
away; in motion it rises and lag stays small. Timestamps come with every sample, so uneven
frame intervals (a dropped camera frame, a rosbag played at another rate) filter correctly.

* :class:`OneEuroFilter` filters an ``(n, d)`` array row by row: each row (a landmark, a
  coefficient vector) gets its own speed and cutoff, in the units the caller gives.
* :class:`RotationOneEuroFilter` filters rotation matrices on the manifold: the new sample is
  expressed in the tangent space of the previous estimate (the rotation vector of
  ``R_prev^T R``), the speed is the angular speed, and the estimate moves along the geodesic
  by the smoothing factor. Euler angles are never filtered (they wrap and couple).

Two extensions, both measured with ``dense-head-pose stability`` (README, "Video").

First, ``min_speed``: the speed estimate of a noisy signal at rest is not zero, and ``beta``
times that noise speed lifts the cutoff exactly when smoothing is wanted; a high ``beta``
(little lag in motion) then costs smoothing at rest. Speeds up to ``min_speed`` (the noise
level) therefore count as rest: ``cutoff = min_cutoff + beta * max(|speed| - min_speed, 0)``.
With ``min_speed = 0`` this is the paper's filter.

Second, start-up: the filter of the paper starts from the first sample, which is as noisy
as any, and with a low cutoff the error of that one sample takes many frames to decay (a third of a
second at 0.5 Hz). Here the smoothing factor of the k-th sample is at least 1/k, so the first
estimates are the running mean of the samples so far until the exponential average takes
over: the start-up error shrinks as 1/sqrt(k) instead of lingering.

Time rules, shared by both: the first sample passes unchanged; a sample with the same
timestamp as the previous one returns the previous estimate (a repeated frame carries no new
time), and so does one less than :data:`MIN_STEP_S` later (no camera is that fast; a step of
1e-310 s would overflow the speed to infinity and the state to NaN); a timestamp going
backwards restarts the filter at that sample (a looping bag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from ..options import check_fields

#: Time steps below this (seconds) count as the same instant (see module).
MIN_STEP_S = 1e-6


@dataclass(frozen=True)
class OneEuroParams:
    """Parameters of one filter.

    ``min_cutoff`` (Hz): cutoff at rest; lower is smoother and laggier when still.
    ``beta`` (1 / unit of speed): how fast the cutoff rises with speed; higher is less lag.
    ``d_cutoff`` (Hz): cutoff of the speed estimate itself.
    ``min_speed`` (unit of speed): speeds up to it count as rest (see module).
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0
    min_speed: float = 0.0

    KINDS: ClassVar[dict[str, type]] = {"min_cutoff": float, "beta": float, "d_cutoff": float,
                                        "min_speed": float}
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "min_cutoff": (0.001, 1e6), "beta": (0.0, 1e6), "d_cutoff": (0.001, 1e6),
        "min_speed": (0.0, 1e6)}
    """Inclusive range of each parameter (the CLI and the node take theirs from here)."""

    def __post_init__(self) -> None:
        check_fields(self, self.KINDS, self.LIMITS)

    def cutoff(self, speed: np.ndarray | float, rest_scale: float = 1.0
               ) -> np.ndarray | float:
        """The cutoff (Hz) at ``speed``; ``rest_scale`` multiplies ``min_speed`` (see
        :meth:`OneEuroFilter.__call__`)."""
        return self.min_cutoff + self.beta * np.maximum(
            np.asarray(speed) - self.min_speed * rest_scale, 0.0)


def smoothing_factor(dt: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """The exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter of ``(n, d)`` arrays; each row has its own speed and cutoff."""

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None
        self._n = 0

    def reset(self) -> None:
        """Forget the state; the next sample passes unchanged."""
        self._x = self._dx = self._t = None
        self._n = 0

    def __call__(self, x: np.ndarray, t: float, speed_unit: np.ndarray | float = 1.0,
                 rest_scale: float = 1.0) -> np.ndarray:
        """Filter sample ``x`` (any shape; rows are its first axis) taken at ``t`` seconds.

        ``speed_unit`` divides each row's speed before it enters the cutoff (e.g. the face
        size, to make a pixel speed resolution-free); a scalar or one value per row.
        ``rest_scale`` multiplies ``min_speed``, the speed that still counts as rest: the
        caller's measure of how noisy this sample is against the noise ``min_speed`` was
        set for (a face half the size jitters twice as much in face units).
        """
        x = np.asarray(x, dtype=np.float64)
        rows = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(1, -1)
        if self._x is None or self._t is None or t < self._t or self._x.shape != rows.shape:
            self._x, self._dx, self._t, self._n = rows.copy(), np.zeros_like(rows), t, 1
            return x.copy()
        dt = t - self._t
        if dt < MIN_STEP_S:  # the same instant again: nothing new to learn
            return self._x.reshape(x.shape).copy()
        p = self.params
        dx = (rows - self._x) / dt
        assert self._dx is not None
        self._dx += smoothing_factor(dt, p.d_cutoff) * (dx - self._dx)
        unit = np.asarray(speed_unit, dtype=np.float64).reshape(-1, 1)
        speed = np.linalg.norm(self._dx, axis=1, keepdims=True) / unit
        self._n += 1
        alpha = np.maximum(smoothing_factor(dt, p.cutoff(speed, rest_scale)), 1.0 / self._n)
        self._x = self._x + alpha * (rows - self._x)
        self._t = t
        return self._x.reshape(x.shape).copy()


class RotationOneEuroFilter:
    """One-Euro filter of 3x3 rotation matrices, on the rotation manifold (see module)."""

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self._r: np.ndarray | None = None
        self._w = np.zeros(3)
        self._t: float | None = None
        self._n = 0

    def reset(self) -> None:
        """Forget the state; the next sample passes unchanged."""
        self._r, self._t = None, None
        self._w = np.zeros(3)
        self._n = 0

    def __call__(self, r: np.ndarray, t: float, rest_scale: float = 1.0) -> np.ndarray:
        """Filter rotation ``r`` taken at ``t`` seconds; speed is in rad/s; ``rest_scale``
        as for :class:`OneEuroFilter`."""
        r = np.asarray(r, dtype=np.float64)
        if self._r is None or self._t is None or t < self._t:
            self._r, self._w, self._t, self._n = r.copy(), np.zeros(3), t, 1
            return r.copy()
        dt = t - self._t
        if dt < MIN_STEP_S:
            return self._r.copy()
        p = self.params
        delta = log_rotation(self._r.T @ r)  # the sample, in the estimate's tangent space
        self._w += smoothing_factor(dt, p.d_cutoff) * (delta / dt - self._w)
        self._n += 1
        alpha = max(float(smoothing_factor(dt, p.cutoff(np.linalg.norm(self._w),
                                                        rest_scale))),
                    1.0 / self._n)
        self._r = self._r @ exp_rotation(alpha * delta)
        self._t = t
        return self._r.copy()


def log_rotation(r: np.ndarray) -> np.ndarray:
    """Rotation vector (axis times angle, radians) of a rotation matrix."""
    return cv2.Rodrigues(np.ascontiguousarray(r, dtype=np.float64))[0].reshape(3)


def exp_rotation(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector."""
    return cv2.Rodrigues(np.asarray(w, dtype=np.float64).reshape(3, 1))[0]


def geodesic_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between ``a`` and ``b``, degrees."""
    cos = (np.trace(np.asarray(a).T @ np.asarray(b)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(cos)))))
