"""Who looks at whom in a frame: each face's gaze frame in the robot's reference frame,
the faces that look at the robot (mutual gaze, :mod:`.mutual_gaze`) and the faces that
look at each other's faces (REP-155 ``/humans/interactions/gazing``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..pipeline.results import Face
from .engagement import EngagementOptions
from .mutual_gaze import GAZE_IN_HEAD, looks_at, mutual_gaze

#: A gaze frame in the reference frame: rotation (3x3: rows) and origin (metres), as
#: arrays or nested lists.
GazePose = tuple[Any, Any]

_DEFAULT = EngagementOptions()
#: The robot's id as a receiver of gaze (hri_msgs/Gaze: empty means the robot).
ROBOT = ""


def gaze_poses(faces: Sequence[Face], names: Sequence[str],
               camera_in_reference: GazePose | None = None) -> dict[str, GazePose]:
    """Each face's gaze frame (REP-155 ``gaze_<id>``: optical axes, +z along the line of
    sight) in the reference frame, as nested lists: the camera's optical frame turned to +x
    forward, +z up when ``camera_in_reference`` is None, else that pose of the optical frame
    (a robot's TF). Faces without a finite pose are left out."""
    out = {}
    for face, name in zip(faces, names):
        if camera_in_reference is None:
            pose = _in_body(face.pose.rotation.tolist(), face.pose.translation.tolist())
        else:
            rotation, origin = (np.asarray(a, np.float64) for a in camera_in_reference)
            pose = ((rotation @ face.pose.rotation @ GAZE_IN_HEAD).tolist(),
                    (rotation @ np.asarray(face.pose.translation, np.float64)
                     + origin).tolist())
        (r0, r1, r2), t = pose
        if math.isfinite(sum(t) + sum(r0) + sum(r1) + sum(r2)):
            out[name] = pose
    return out


def _in_body(m: list[list[float]], t: list[float]) -> GazePose:
    """``OPTICAL_IN_BODY @ m @ GAZE_IN_HEAD`` and ``OPTICAL_IN_BODY @ t``, written out: both
    turns only permute axes and flip signs (plain floats: this runs for every face of every
    frame, where numpy's per-call cost is most of the work)."""
    p = (m[2], [-v for v in m[0]], [-v for v in m[1]])  # OPTICAL_IN_BODY @ m
    return [[-row[1], -row[2], row[0]] for row in p], [t[2], -t[0], -t[1]]


def camera_mutual_gaze(face: Face, options: EngagementOptions | None = None) -> float:
    """The face's mutual-gaze score with the camera as the robot (its optical frame turned
    to x forward), 0 for a face without a finite pose: what ``FaceArray`` and the CSV
    carry, so each face says whether it looks at the camera whatever TF says."""
    options = options or _DEFAULT
    poses = gaze_poses([face], [""])
    if not poses:
        return 0.0
    return mutual_gaze(*poses[""], options.field_of_view, options.max_distance).score


def gazes(poses: Mapping[str, GazePose], options: EngagementOptions) -> list[tuple[str, str]]:
    """(sender, receiver) of every gaze: a face looking at the robot (receiver ``""``) when
    its mutual-gaze score is above ``engagement_threshold``; a face looking at another
    face when that face is inside its field of attention by more than the same threshold
    (1 on its line of sight, 0 at the edge)."""
    out = []
    for name, (rotation, origin) in poses.items():
        score = mutual_gaze(rotation, origin, options.field_of_view, options.max_distance).score
        if score > options.engagement_threshold:
            out.append((name, ROBOT))
        for other, (_, target) in poses.items():
            if other != name and looks_at(rotation, origin, target, options.field_of_view) \
                    > options.engagement_threshold:
                out.append((name, other))
    return out
