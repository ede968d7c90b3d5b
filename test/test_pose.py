"""Pose: conventions and the metric pose against synthetic perspective projections."""

from __future__ import annotations

import numpy as np
import pytest

from dense_head_pose.pipeline.morphable_model import MorphableModel
from dense_head_pose.pipeline.pose import (
    HEAD_IN_MODEL,
    MICROMETRE,
    CameraIntrinsics,
    euler_angles,
    metric_pose,
    quaternion_from_matrix,
    rotation_from_euler,
    view_rotation,
)


@pytest.fixture(scope="module")
def model_landmarks(estimator) -> np.ndarray:
    """A real face's reconstructed 68 landmarks in model space (micrometres)."""
    from helpers import TESTDATA

    from dense_head_pose import images

    face = estimator(images.read(str(TESTDATA / "one_face.jpg"))).faces[0]
    return estimator.model.landmarks_model(face.params).astype(np.float64)


def _project(model_pts, head_rotation, sellion_position, k: CameraIntrinsics):
    """Perspective projection of model points for a head frame at a known pose."""
    model_to_cam = head_rotation @ HEAD_IN_MODEL.T
    cam = (model_pts - model_pts[27]) @ model_to_cam.T * MICROMETRE + sellion_position
    uv = np.stack([k.fx * cam[:, 0] / cam[:, 2] + k.cx, k.fy * cam[:, 1] / cam[:, 2] + k.cy], 1)
    return uv


def _fit_affine(model_pts, uv) -> np.ndarray:
    """Least-squares affine camera, as the network approximates one."""
    a = np.concatenate([model_pts, np.ones((len(model_pts), 1))], axis=1)
    rows = np.linalg.lstsq(a, uv, rcond=None)[0].T  # 2 x 4
    third = np.cross(rows[0, :3], rows[1, :3]) / np.linalg.norm(rows[0, :3])
    return np.vstack([rows, np.append(third, 0.0)])


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))


def test_frontal_face_is_zero_angles() -> None:
    frontal = np.diag([1.0, -1.0, -1.0])  # model (y up, z to viewer) -> optical (y down, z away)
    assert np.allclose(euler_angles(frontal), (0, 0, 0), atol=1e-9)


@pytest.mark.parametrize("angles", [(30, 0, 0), (0, 20, 0), (0, 0, -25), (40, -15, 10),
                                    (-70, 30, 5)])
def test_euler_round_trip(angles) -> None:
    assert np.allclose(euler_angles(rotation_from_euler(*angles)), angles, atol=1e-9)


def test_sign_conventions(model_landmarks) -> None:
    nose, sellion = model_landmarks[30], model_landmarks[27]
    # yaw > 0: the subject turns to their left, the nose tip moves to image right (x grows)
    r = rotation_from_euler(30, 0, 0)
    assert (r @ (nose - sellion))[0] > 0.5 * np.linalg.norm(nose - sellion) * 0.3
    # pitch > 0: the subject looks down, the nose tip moves down in the image (y grows)
    r = rotation_from_euler(0, 30, 0)
    assert (r @ (nose - sellion))[1] > (rotation_from_euler(0, 0, 0) @ (nose - sellion))[1]
    # roll > 0: counter-clockwise in the image, the subject's left eye (45) rises above the
    # right eye (36); image y grows downwards
    r = rotation_from_euler(0, 0, 20)
    left, right = r @ model_landmarks[45], r @ model_landmarks[36]
    assert left[1] < right[1]


@pytest.mark.parametrize(("angles", "position"), [
    ((0, 0, 0), (0.0, 0.0, 0.5)),
    ((25, -10, 5), (0.0, 0.0, 0.5)),
    ((0, 0, 0), (0.15, -0.08, 0.5)),
    ((-30, 15, -10), (-0.12, 0.1, 0.8)),
])
def test_metric_pose_of_synthetic_projections(model_landmarks, angles, position) -> None:
    k = CameraIntrinsics.default(640, 480)
    head_rotation = _optical_head_rotation(angles, np.array(position))
    uv = _project(model_landmarks, head_rotation, np.array(position), k)
    camera = _fit_affine(model_landmarks, uv)
    pose = metric_pose(camera, model_landmarks, k)
    assert pose.translation[2] == pytest.approx(position[2], rel=0.05)
    assert np.allclose(pose.translation, position, atol=0.05 * position[2])
    assert _angle_between(pose.rotation, head_rotation) < 3.0


def _optical_head_rotation(angles, position) -> np.ndarray:
    """Head frame in the optical frame: the Euler angles relative to the line of sight."""
    from dense_head_pose.pipeline.pose import _rotation_between

    view = rotation_from_euler(*angles) @ HEAD_IN_MODEL
    ray = _rotation_between(np.array([0.0, 0.0, 1.0]), position / np.linalg.norm(position))
    return ray @ view


def test_off_axis_face_looking_straight_ahead_has_no_rotation(model_landmarks) -> None:
    # a face at the image edge facing along the optical axis looks turned in the image (its
    # view-relative yaw is not 0) but its rotation in the camera frame is the frontal one
    k = CameraIntrinsics.default(640, 480)
    frontal = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
    position = np.array([0.25, 0.0, 0.5])
    uv = _project(model_landmarks, frontal, position, k)
    camera = _fit_affine(model_landmarks, uv)
    yaw, _, _ = euler_angles(view_rotation(camera)[0])
    assert abs(yaw) > 15
    pose = metric_pose(camera, model_landmarks, k)
    assert _angle_between(pose.rotation, frontal) < 3.0


def test_depth_scales_with_focal_length(model_landmarks) -> None:
    k1 = CameraIntrinsics(500, 500, 320, 240)
    k2 = CameraIntrinsics(1000, 1000, 320, 240)
    uv = _project(model_landmarks, _optical_head_rotation((0, 0, 0), np.array([0, 0, 1.0])),
                  np.array([0, 0, 1.0]), k1)
    camera = _fit_affine(model_landmarks, uv)
    z1 = metric_pose(camera, model_landmarks, k1).translation[2]
    z2 = metric_pose(camera, model_landmarks, k2).translation[2]
    # the face's depth doubles; the sellion sits a fixed 2 cm in front of the landmark centroid
    assert z1 == pytest.approx(1.0, rel=0.05)
    assert z2 == pytest.approx(2 * z1, rel=0.02)


def test_quaternion_matches_rotation() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        r = rotation_from_euler(*rng.uniform(-170, 170, 3))
        x, y, z, w = quaternion_from_matrix(r)
        assert w >= 0 and np.isclose(x * x + y * y + z * z + w * w, 1.0)
        back = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        assert np.allclose(back, r, atol=1e-9)


@pytest.mark.parametrize("bad", [(0, 1, 0, 0), (1, -1, 0, 0), (np.nan, 1, 0, 0),
                                 (1, 1, np.inf, 0)])
def test_invalid_intrinsics_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        CameraIntrinsics(*bad)


def test_real_faces_pose_in_the_camera_frame(estimator, two_faces) -> None:
    faces = estimator(two_faces).faces
    left, right = sorted(faces, key=lambda f: f.box[0])
    # left person left of the optical axis (x < 0), right person right of it, same height band
    assert left.pose.translation[0] < 0 < right.pose.translation[0]
    assert abs(left.pose.translation[2] - right.pose.translation[2]) < 0.2
    for face in faces:
        # head x axis (out of the face) points back towards the camera (negative optical z)
        assert face.pose.rotation[2, 0] < 0
        # the metric landmarks re-project onto the image landmarks
        k = CameraIntrinsics.default(two_faces.shape[1], two_faces.shape[0])
        pts = face.landmarks_in_camera()
        uv = np.stack([k.fx * pts[:, 0] / pts[:, 2] + k.cx, k.fy * pts[:, 1] / pts[:, 2] + k.cy], 1)
        span = np.ptp(face.landmarks[:, 0])
        assert np.linalg.norm(uv - face.landmarks[:, :2], axis=1).mean() < 0.05 * span


def test_model_sellion_is_origin(estimator, one_face) -> None:
    face = estimator(one_face).faces[0]
    assert np.allclose(face.landmarks_in_camera()[27], face.pose.translation, atol=1e-6)
    assert isinstance(estimator.model, MorphableModel)
