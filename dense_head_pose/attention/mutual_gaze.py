"""Mutual gaze between a face and the robot, as ros4hri's ``hri_engagement`` measures it
(Webb and Lemaignan, "Measuring Visual Social Engagement from Proxemics and Gaze").

The face's *gaze frame* (REP-155 ``gaze_<id>``: optical axes, +z along the face's line of
sight, +y down) is given in the robot's *reference frame* (+x forward, +z up: a robot
frame at eye height, ``sellion_link`` on PAL's robots). With A the person and B the robot:

* ``gaze_ab``, how close the robot is to the person's line of sight: the robot's position
  in the gaze frame, ``1 - lateral / (tan(fov) * forward)``, 0 behind the face or beyond;
* ``gaze_ba``, how close the person is to the robot's line of sight: the same, with the
  face's position in the reference frame;
* a distance term, 1 at the robot, 0 at ``max_distance``:
  ``log(max_distance - d + 1) / log(max_distance + 1)``;
* the score ``min(1, gaze_ab * gaze_ba * distance term)``; 0 beyond ``max_distance``.

``fov`` is the half-field of attention of both; ``tan(fov)`` with the default 60 degrees is
1.73, so the cone is wide (a face 45 degrees off the axis still scores 0.42).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Optical axes (x right, y down, z forward) in a body frame (x forward, y left, z up).
OPTICAL_IN_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
#: The gaze frame (REP-155 ``gaze_<id>``: optical axes, z along the line of sight) in the
#: head frame (x forward out of the face, z up): the same turn.
GAZE_IN_HEAD = OPTICAL_IN_BODY


@dataclass(frozen=True)
class MutualGaze:
    """One face's mutual gaze with the robot (see module)."""

    distance: float
    gaze_ab: float
    gaze_ba: float
    score: float


def _floats(value: Any) -> Any:
    """An array as nested lists of floats; lists as they are."""
    return value.tolist() if isinstance(value, np.ndarray) else value


def _cone(forward: float, lateral: float, tan_fov: float) -> float:
    """1 on the axis, falling to 0 at the cone's edge; 0 behind."""
    if forward <= 0.0:
        return 0.0
    return max(0.0, 1.0 - lateral / (tan_fov * forward))


def mutual_gaze(rotation: np.ndarray, translation: np.ndarray, field_of_view_deg: float = 60.0,
                max_distance: float = 4.0) -> MutualGaze:
    """The mutual gaze of a face whose gaze frame has ``rotation`` (3x3, gaze axes in the
    reference frame's) and ``translation`` (its origin, metres) in the reference frame.

    Plain floats: a node computes it for every face of every frame, and numpy's per-call
    overhead on 3-vectors would cost more than the arithmetic."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = _floats(rotation)
    tx, ty, tz = _floats(translation)
    distance = math.sqrt(tx * tx + ty * ty + tz * tz)
    if not math.isfinite(distance) or distance > max_distance:
        return MutualGaze(distance, 0.0, 0.0, 0.0)
    tan_fov = math.tan(math.radians(field_of_view_deg))
    # the robot (the reference frame's origin) in the gaze frame: -R^T t
    rx = -(r00 * tx + r10 * ty + r20 * tz)
    ry = -(r01 * tx + r11 * ty + r21 * tz)
    rz = -(r02 * tx + r12 * ty + r22 * tz)
    gaze_ab = _cone(rz, math.hypot(rx, ry), tan_fov)
    gaze_ba = _cone(tx, math.hypot(ty, tz), tan_fov)
    near = 0.0
    if tx > 0.0:
        near = math.log(max_distance - distance + 1.0) / math.log(max_distance + 1.0)
    return MutualGaze(distance, gaze_ab, gaze_ba, min(1.0, gaze_ab * gaze_ba * near))


def looks_at(rotation: np.ndarray, translation: np.ndarray, target: np.ndarray,
             field_of_view_deg: float = 60.0) -> float:
    """How close ``target`` (a point in the same frame) is to the line of sight of a gaze
    frame (``rotation``, ``translation``): 1 on it, 0 at the cone's edge or behind."""
    r = _floats(rotation)
    dx, dy, dz = (a - b for a, b in zip(_floats(target), _floats(translation)))
    x, y, z = (r[0][i] * dx + r[1][i] * dy + r[2][i] * dz for i in range(3))
    return _cone(z, math.hypot(x, y), math.tan(math.radians(field_of_view_deg)))
