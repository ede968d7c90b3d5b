"""A TF tree of the latest transforms, without tf2: enough to replay a recording's ``/tf``
and ``/tf_static`` and to ask where one frame is in another (tf2_ros is not everywhere this
package runs; a live node with tf2 uses it instead)."""

from __future__ import annotations

import numpy as np

#: A rigid transform: rotation (3x3) and translation (3,).
Pose = tuple[np.ndarray, np.ndarray]


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The rotation matrix of a quaternion (normalised first)."""
    q = np.array([x, y, z, w], np.float64)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n == 0.0:
        return np.eye(3)
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class TfTree:
    """The latest transform of every frame from its parent."""

    def __init__(self) -> None:
        self._parent: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}

    def set(self, parent: str, child: str, rotation: np.ndarray,
            translation: np.ndarray) -> None:
        """``child``'s pose in ``parent`` (a frame has one parent: the latest wins)."""
        self._parent[child] = (parent, np.asarray(rotation, np.float64),
                               np.asarray(translation, np.float64))

    def set_message(self, transform: object) -> None:
        """A ``geometry_msgs/TransformStamped`` (any object with its fields)."""
        t = transform.transform  # type: ignore[attr-defined]
        q, v = t.rotation, t.translation
        self.set(transform.header.frame_id, transform.child_frame_id,  # type: ignore[attr-defined]
                 quaternion_matrix(q.x, q.y, q.z, q.w), np.array([v.x, v.y, v.z]))

    def parent(self, frame: str) -> str | None:
        entry = self._parent.get(frame)
        return entry[0] if entry is not None else None

    def __contains__(self, frame: str) -> bool:
        return frame in self._parent or any(p == frame for p, _, _ in self._parent.values())

    def _to_root(self, frame: str) -> tuple[str, np.ndarray, np.ndarray]:
        rotation, translation = np.eye(3), np.zeros(3)
        seen = set()
        while frame in self._parent and frame not in seen:
            seen.add(frame)
            parent, r, t = self._parent[frame]
            rotation, translation = r @ rotation, r @ translation + t
            frame = parent
        return frame, rotation, translation

    def lookup(self, target: str, source: str) -> Pose | None:
        """``source``'s pose in ``target`` (rotation, translation), or None when the two are
        not in one tree."""
        root_s, rs, ts = self._to_root(source)
        root_t, rt, tt = self._to_root(target)
        if root_s != root_t:
            return None
        return rt.T @ rs, rt.T @ (ts - tt)
