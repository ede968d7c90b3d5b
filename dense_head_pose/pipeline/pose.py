"""Head pose from the 3DMM's affine camera: angles, and a metric 6-DoF pose.

Frames
------
* **Model space** (BFM): x to the subject's left, y up, z out of the face; micrometres.
* **Image camera**: the regressor's camera mapped to the full image, a 3x4 affine matrix
  ``P`` taking model points to ``(u, v, d)``: pixels right and down, and a relative depth that
  grows towards the camera. Its first two rows are ``scale * (r_x, r_y)`` of a rotation.
* **Camera optical frame** (REP-103): x right, y down, z forward (out of the lens).
* **Head frame** (REP-155 face frame): origin at the sellion (landmark 27), x forward out of
  the face, y to the face's left, z up towards the scalp.

Angles
------
``yaw, pitch, roll`` (degrees) are the intrinsic Z-Y-X angles of the head frame relative to a
head that faces the viewer squarely (REP-103 right-hand rule about the head's own up, left and
forward axes): **yaw > 0** the subject turns to their left (the nose moves to image right),
**pitch > 0** the subject looks down (nods), **roll > 0** the head tilts towards the subject's
right shoulder (the face turns counter-clockwise in the image). They describe the face as the
camera sees it, i.e. relative to the line of sight to the face, like 3DDFA_V2 and the usual
head-pose benchmarks. Mirroring an image negates yaw and roll; rotating it counter-clockwise by
``a`` degrees adds ``a`` to roll.

Metric pose
-----------
Under weak perspective, the camera's scale ``s`` (pixels per model micrometre) gives the depth
of the face: ``Z = f * 1e-6 / s`` metres for focal length ``f`` pixels, referred to the centroid
of the 68 landmarks (the points the network fits). Back-projecting that centroid's pixel gives
its 3D position. The affine rotation is relative to the line of sight, so it is turned by the
rotation taking the optical axis to that line (a face at the image edge looking parallel to the
optical axis then has zero rotation in the camera frame). The head frame's origin is the sellion
placed from the centroid by that rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Head frame (x forward, y left, z up) expressed in model axes (x left, y up, z forward).
HEAD_IN_MODEL = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
#: Optical-frame orientation of the head frame of a face squarely facing the camera.
FRONTAL_IN_OPTICAL = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
MICROMETRE = 1e-6


#: Focal lengths a camera can have, pixels (a 1-pixel-wide fisheye to a telescope), and how
#: far outside the image the principal point may lie. Outside these the metric pose would
#: overflow or collapse (translations of 1e297 m, NaN): such intrinsics are refused.
FOCAL_RANGE = (1.0, 1e6)
MAX_PRINCIPAL_POINT = 1e6


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels. Validated: finite numbers, focal lengths in
    :data:`FOCAL_RANGE`, principal point within :data:`MAX_PRINCIPAL_POINT` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                   for v in values):
            raise ValueError(f"camera intrinsics must be numbers, got {values}")
        low, high = FOCAL_RANGE
        if (not all(math.isfinite(v) for v in values) or not low <= self.fx <= high
                or not low <= self.fy <= high or abs(self.cx) > MAX_PRINCIPAL_POINT
                or abs(self.cy) > MAX_PRINCIPAL_POINT):
            raise ValueError(f"camera intrinsics fx={self.fx} fy={self.fy} cx={self.cx} "
                             f"cy={self.cy} cannot be a camera: focal lengths must be "
                             f"{low:g}..{high:g} pixels, the principal point within "
                             f"{MAX_PRINCIPAL_POINT:g} pixels")

    @classmethod
    def default(cls, width: int, height: int) -> CameraIntrinsics:
        """Stand-in intrinsics when the camera is unknown: f = image width, centred."""
        return cls(float(width), float(width), width / 2.0, height / 2.0)

    @classmethod
    def from_matrix(cls, k: np.ndarray | list[float]) -> CameraIntrinsics:
        """From a 3x3 camera matrix (or its 9 row-major values, as in CameraInfo.k)."""
        m = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]))

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class HeadPose:
    """Pose of the head frame in the camera optical frame: metres and a rotation."""

    translation: np.ndarray
    rotation: np.ndarray

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        """The rotation as a unit quaternion (x, y, z, w), w >= 0."""
        return quaternion_from_matrix(self.rotation)


def quaternion_from_matrix(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix, numerically robust, w >= 0."""
    m = np.asarray(r, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    quat = np.array(q)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors: the same formula as ``np.cross``, whose generality
    costs 30 us a call, a third of a face's pose (``np.cross`` handles any axes)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def view_rotation(camera: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Orthonormal rotation model -> optical frame of the line of sight, and the x, y scales.

    The two rows of the affine camera, normalised, are replaced by their nearest orthonormal pair
    (the polar factor, so neither row is favoured: two steps of the symmetric correction
    ``r1 -= d/2 r2, r2 -= d/2 r1`` converge quadratically from the network's near-orthogonal
    rows, and cost a tenth of an SVD) and completed by their cross product.
    """
    r1 = camera[0, :3].astype(np.float64)
    r2 = camera[1, :3].astype(np.float64)
    sx, sy = float(np.linalg.norm(r1)), float(np.linalg.norm(r2))
    r1, r2 = r1 / sx, r2 / sy
    for _ in range(2):
        d = float(r1 @ r2) / 2.0
        r1, r2 = r1 - d * r2, r2 - d * r1
        r1 /= np.linalg.norm(r1)
        r2 /= np.linalg.norm(r2)
    return np.vstack([r1, r2, _cross(r1, r2)]), sx, sy


def log_rotation(r: np.ndarray) -> np.ndarray:
    """Rotation vector (axis times angle, radians) of a rotation matrix."""
    return cv2.Rodrigues(np.ascontiguousarray(r, dtype=np.float64))[0].reshape(3)


def exp_rotation(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis times angle, radians)."""
    return cv2.Rodrigues(np.asarray(w, dtype=np.float64).reshape(3, 1))[0]


def geodesic_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between rotation matrices ``a`` and ``b``, degrees."""
    cos = (np.trace(np.asarray(a).T @ np.asarray(b)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(cos)))))


def euler_angles(view_rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a model -> optical view rotation (see module doc)."""
    rel = FRONTAL_IN_OPTICAL.T @ view_rot @ HEAD_IN_MODEL
    yaw = math.atan2(rel[1, 0], rel[0, 0])
    pitch = math.asin(max(-1.0, min(1.0, -rel[2, 0])))
    roll = math.atan2(rel[2, 1], rel[2, 2])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model -> optical view rotation for angles in degrees; inverse of :func:`euler_angles`."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    return FRONTAL_IN_OPTICAL @ (rz @ ry @ rx) @ HEAD_IN_MODEL.T


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector ``a`` to unit vector ``b`` (Rodrigues form)."""
    v = _cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-12:  # opposite vectors: never the case for rays in front of a camera
        raise ValueError("cannot rotate a vector onto its opposite without an axis")
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def metric_pose(camera: np.ndarray, landmarks_model: np.ndarray, intrinsics: CameraIntrinsics,
                view: tuple[np.ndarray, float, float] | None = None) -> HeadPose:
    """Head frame pose in the optical frame from the affine image camera (see module doc).

    ``view`` is :func:`view_rotation` of ``camera`` when the caller has it already.
    """
    view_rot, sx, sy = view or view_rotation(camera)
    centroid = landmarks_model.mean(axis=0).astype(np.float64)
    u, v = camera[:2, :3].astype(np.float64) @ centroid + camera[:2, 3]
    depth = 0.5 * (intrinsics.fx / sx + intrinsics.fy / sy) * MICROMETRE
    centre = depth * np.array([(u - intrinsics.cx) / intrinsics.fx,
                               (v - intrinsics.cy) / intrinsics.fy, 1.0])
    model_to_cam = _rotation_between(np.array([0.0, 0.0, 1.0]),
                                     centre / np.linalg.norm(centre)) @ view_rot
    sellion = landmarks_model[27].astype(np.float64)
    origin = centre + model_to_cam @ (sellion - centroid) * MICROMETRE
    return HeadPose(translation=origin, rotation=model_to_cam @ HEAD_IN_MODEL)


def pnp_pose(landmarks_px: np.ndarray, landmarks_model: np.ndarray,
             intrinsics: CameraIntrinsics, initial: HeadPose) -> HeadPose:
    """Refine ``initial`` by perspective-n-point on the 68 landmarks (iterative LM).

    The 3D points are the face's own reconstructed landmarks (model space), the 2D points
    their image positions; the sellion stays the origin of the returned head frame.
    """
    obj = (landmarks_model.astype(np.float64) * MICROMETRE)
    sellion = obj[27]
    model_rot = initial.rotation @ HEAD_IN_MODEL.T
    tvec0 = initial.translation - model_rot @ sellion
    rvec0 = cv2.Rodrigues(model_rot)[0]
    ok, rvec, tvec = cv2.solvePnP(obj, landmarks_px[:, :2].astype(np.float64),
                                  intrinsics.matrix, None, rvec=rvec0.copy(),
                                  tvec=tvec0.reshape(3, 1).copy(), useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:
        return initial
    rot = cv2.Rodrigues(rvec)[0]
    return HeadPose(translation=tvec.reshape(3) + rot @ sellion, rotation=rot @ HEAD_IN_MODEL)
