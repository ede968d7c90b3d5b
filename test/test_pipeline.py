"""The whole core pipeline on real images and video, including metamorphic relations."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rotate_image

from dense_head_pose import ImageError
from dense_head_pose.pipeline.detection import Detection

EYES = list(range(36, 48))
MOUTH = list(range(48, 68))


def _match(faces, point):
    """The face whose landmark centre is nearest ``point``."""
    return min(faces, key=lambda f: np.linalg.norm(f.landmarks[:, :2].mean(0) - point))


def _size(face) -> float:
    span = face.landmarks[:, :2].max(0) - face.landmarks[:, :2].min(0)
    return float(np.sqrt(span[0] * span[1]))


@pytest.mark.parametrize("fixture", ["one_face", "two_faces", "three_faces"])
def test_landmarks_sit_on_the_faces(request, estimator, fixture) -> None:
    image = request.getfixturevalue(fixture)
    result = estimator(image)
    assert result.faces and (result.width, result.height) == image.shape[1::-1]
    for face in result.faces:
        assert face.landmarks.shape == (68, 3) and face.landmarks.dtype == np.float32
        x1, y1, x2, y2 = face.box
        w, h = x2 - x1, y2 - y1
        lm = face.landmarks
        inside = ((lm[:, 0] > x1 - 0.15 * w) & (lm[:, 0] < x2 + 0.15 * w)
                  & (lm[:, 1] > y1 - 0.15 * h) & (lm[:, 1] < y2 + 0.25 * h))
        assert inside.all()
        assert lm[EYES, 1].mean() < lm[MOUTH, 1].mean()  # eyes above the mouth
        assert lm[27, 1] < lm[30, 1] < lm[8, 1]  # sellion above nose tip above chin
        assert face.params.shape == (62,) and np.all(np.isfinite(face.params))
        assert np.allclose(face.pose.rotation @ face.pose.rotation.T, np.eye(3), atol=1e-6)
        assert 0.1 < face.pose.translation[2] < 5.0


def test_dense_vertices_agree_with_sparse_landmarks(estimator, one_face) -> None:
    face = estimator(one_face, dense=True).faces[0]
    assert face.has_vertices
    v = face.vertices
    assert v.shape == (38365, 3) and v.dtype == np.float32 and np.all(np.isfinite(v))
    keypoints = estimator.model.keypoints
    # the thin-plate deformation reproduces the exact sparse model at the 68 keypoints
    assert np.abs(v[keypoints] - face.landmarks).max() < 0.05 * _size(face) / 100
    x1, _, x2, _ = face.roi
    assert (v[:, 0] > x1).all() and (v[:, 0] < x2).all()


def test_dense_is_lazy(estimator, one_face) -> None:
    face = estimator(one_face).faces[0]
    assert not face.has_vertices
    assert face.vertices.shape == (38365, 3)
    assert face.has_vertices


def test_mirror_negates_yaw_and_roll(estimator, two_faces) -> None:
    w = two_faces.shape[1]
    original = estimator(two_faces).faces
    mirrored = estimator(two_faces[:, ::-1]).faces
    assert len(original) == len(mirrored) == 2
    for face in original:
        centre = face.landmarks[:, :2].mean(0)
        twin = _match(mirrored, np.array([w - 1 - centre[0], centre[1]]))
        assert abs(face.yaw) > 10  # both faces are turned: the relation is not trivial
        assert twin.yaw == pytest.approx(-face.yaw, abs=4.0)
        assert twin.roll == pytest.approx(-face.roll, abs=4.0)
        assert twin.pitch == pytest.approx(face.pitch, abs=4.0)
        # landmarks mirror too: the jaw contour (0..16) maps onto itself reversed
        flipped = face.landmarks[::-1][51:68, :2].copy()  # 16..0
        flipped[:, 0] = w - 1 - flipped[:, 0]
        err = np.linalg.norm(twin.landmarks[:17, :2] - flipped, axis=1).mean()
        assert err < 0.06 * _size(face)


@pytest.mark.parametrize("angle", [20.0, -20.0])
def test_rotating_the_image_shifts_roll(estimator, one_face, angle) -> None:
    base = estimator(one_face).faces[0]
    rotated = estimator(rotate_image(one_face, angle)).faces
    assert len(rotated) == 1
    assert rotated[0].roll - base.roll == pytest.approx(angle, abs=5.0)
    assert rotated[0].yaw == pytest.approx(base.yaw, abs=5.0)


def test_scaling_the_image_scales_landmarks(estimator, one_face) -> None:
    import cv2

    base = estimator(one_face).faces[0]
    big = cv2.resize(one_face, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    scaled = estimator(big).faces[0]
    err = np.linalg.norm(scaled.landmarks[:, :2] - (base.landmarks[:, :2] * 2 + 0.5), axis=1)
    assert err.mean() < 0.02 * _size(scaled)
    assert scaled.yaw == pytest.approx(base.yaw, abs=3.0)
    # same camera geometry at twice the resolution (f = width doubles): same metric pose
    assert np.allclose(scaled.pose.translation, base.pose.translation, atol=0.02)


def test_every_video_frame_has_one_face(estimator, video_frames) -> None:
    assert len(video_frames) == 55
    yaws = []
    for frame in video_frames:
        faces = estimator(frame).faces
        assert len(faces) == 1
        yaws.append(faces[0].yaw)
    # the speaker turns from her right (yaw about -35) to her left (about +35) between
    # frames 30 and 45; the estimate follows smoothly, without frame-to-frame jumps
    assert max(yaws[:20]) < -25 and min(yaws[-10:]) > 25
    assert np.abs(np.diff(yaws)).max() < 15.0
    assert np.abs(np.diff(yaws[:30])).max() < 4.0


def test_face_cut_by_the_image_border(estimator, one_face) -> None:
    face = estimator(one_face).faces[0]
    cut = int((face.box[0] + face.box[2]) / 2 - 0.25 * (face.box[2] - face.box[0]))
    result = estimator(one_face[:, cut:])  # the left part of the face is missing
    assert len(result.faces) == 1
    border_face = result.faces[0]
    assert np.all(np.isfinite(border_face.landmarks))
    assert border_face.roi[0] < 0  # the crop reaches past the image: zero padded
    # visible landmarks (right half) stay where they were
    right = face.landmarks[:, 0] > cut + 0.2 * (face.box[2] - face.box[0])
    moved = np.linalg.norm(border_face.landmarks[right, :2] + [cut, 0]
                           - face.landmarks[right, :2], axis=1)
    assert moved.mean() < 0.1 * _size(face)


def test_image_layouts_are_converted(estimator, one_face) -> None:
    import cv2

    reference = estimator(one_face).faces[0].landmarks
    grey = cv2.cvtColor(one_face, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(one_face, cv2.COLOR_BGR2BGRA)
    sixteen = one_face.astype(np.uint16) * 257
    floats = one_face.astype(np.float32) / 255.0
    strided = np.zeros((one_face.shape[0], one_face.shape[1] * 2, 3), np.uint8)
    strided[:, ::2] = one_face
    for variant in (grey, grey[:, :, None], bgra, sixteen, floats, strided[:, ::2]):
        faces = estimator(variant).faces
        assert len(faces) == 1
        tolerance = 0.08 if variant.ndim == 2 or variant.shape[-1] == 1 else 0.01
        assert np.abs(faces[0].landmarks[:, :2] - reference[:, :2]).mean() < tolerance * 200


@pytest.mark.parametrize("bad", [
    np.zeros((0, 0, 3), np.uint8), np.zeros((10, 0, 3), np.uint8), np.zeros((4, 4, 2), np.uint8),
    np.zeros((4, 4, 3), np.complex64), np.zeros((2, 2, 2, 3), np.uint8), "not an image", None,
])
def test_unusable_inputs_raise_image_error(estimator, bad) -> None:
    with pytest.raises(ImageError):
        estimator(bad)


def test_tiny_and_flat_images_give_no_face(estimator) -> None:
    assert estimator(np.zeros((1, 1, 3), np.uint8)).faces == []
    assert estimator(np.full((3, 2), 255, np.uint8)).faces == []
    nan_image = np.full((64, 64, 3), np.nan, np.float32)
    assert estimator(nan_image).faces == []


def test_boxes_outside_or_degenerate_are_skipped(estimator, one_face) -> None:
    boxes = [Detection(np.array([np.nan, 0, 10, 10.0]), 0.9),
             Detection(np.array([5.0, 5.0, 5.0, 5.0]), 0.9),
             Detection(np.array([1e7, 1e7, 1e7 + 100, 1e7 + 100]), 0.9)]
    result = estimator(one_face, boxes=boxes)
    # NaN and zero-size boxes give no face; a box far outside gives a finite (meaningless) one
    assert all(np.all(np.isfinite(f.landmarks)) for f in result.faces)
    assert len(result.faces) <= 1


def test_nan_parameters_are_dropped(estimator, one_face, monkeypatch) -> None:
    # fault injection: the regressor returns NaN (e.g. a corrupted model); the face is skipped
    monkeypatch.setattr(estimator.regressor, "regress",
                        lambda image, rois, mirror, times=None: (np.full((len(rois), 62), np.nan),
                                                                 None))
    assert estimator(one_face).faces == []


def test_a_batch_of_crops_gives_each_crop_its_own_result(estimator, three_faces) -> None:
    """Every face of a frame, with its mirror, goes through the regressor in one invoke:
    each row equals that crop run alone, so batching changes no result."""
    faces = estimator(three_faces).faces
    assert len(faces) == 3
    rois = [f.roi for f in faces] * 3  # 9 crops + 9 mirrors: two invokes (MAX_BATCH 16)
    regressor = estimator.regressor
    plain, flipped = regressor.regress(three_faces, rois, mirror=True)
    for k, roi in enumerate(rois):
        alone, alone_flipped = regressor.regress(three_faces, [roi], mirror=True)
        assert np.array_equal(plain[k], alone[0]) and np.array_equal(flipped[k], alone_flipped[0])
        one, none = regressor.regress(three_faces, [roi], mirror=False)
        assert none is None and np.array_equal(one[0], alone[0])
    # and an estimator's fits of several faces at once are each face's fit alone
    batched = estimator.fits(three_faces, [f.roi for f in faces])
    assert [fit.params.tolist() for fit in batched] == \
        [estimator.fit(three_faces, f.roi).params.tolist() for f in faces]
