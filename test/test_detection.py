"""RFB-320 detection on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dense_head_pose.pipeline.detection import TRAINED_INPUT, make_priors
from dense_head_pose.pipeline.estimator import EstimatorOptions


def test_priors_match_the_model_layout() -> None:
    priors = make_priors()
    assert priors.shape == (4420, 4)
    # first level: 40x30 map, 3 sizes per cell, row-major: cells 0 and 1 differ in x only
    assert np.allclose(priors[0, :2], [0.5 / 40, 0.5 / 30])
    assert np.allclose(priors[3, :2], [1.5 / 40, 0.5 / 30])
    assert np.allclose(priors[40 * 3, :2], [0.5 / 40, 1.5 / 30])
    assert np.allclose(priors[:3, 2] * 320, [10, 16, 24])
    # last prior: the 5x4 map's last cell, largest box (clipped to 1)
    assert np.allclose(priors[-1, :2], [4.5 / 5, 3.5 / 4])


@pytest.mark.parametrize(("fixture", "count"), [("one_face", 1), ("two_faces", 2),
                                                 ("three_faces", 3)])
def test_finds_every_face(request: pytest.FixtureRequest, estimator, fixture: str,
                          count: int) -> None:
    image = request.getfixturevalue(fixture)
    detections = estimator.detect(image)
    assert len(detections) == count
    h, w = image.shape[:2]
    areas = []
    for det in detections:
        x1, y1, x2, y2 = det.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert det.score > 0.6
        areas.append((x2 - x1) * (y2 - y1))
    assert areas == sorted(areas, reverse=True)


@pytest.mark.parametrize(("fixture", "count"), [("one_face", 1), ("two_faces", 2),
                                                 ("three_faces", 3)])
def test_finds_every_face_in_a_4x_reduced_copy(request: pytest.FixtureRequest, estimator,
                                               fixture: str, count: int) -> None:
    """The detector's bilinear downscale keeps recall on small copies as on the originals."""
    import cv2

    image = request.getfixturevalue(fixture)
    small = cv2.resize(image, (image.shape[1] // 4, image.shape[0] // 4),
                       interpolation=cv2.INTER_AREA)
    detections = estimator.detect(small)
    assert len(detections) == count
    assert all(d.score > 0.9 for d in detections)


def test_no_face_in_blank_or_noise(estimator) -> None:
    rng = np.random.default_rng(1)
    assert estimator.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert estimator.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert estimator.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []


def test_max_faces_keeps_the_largest(estimator, three_faces) -> None:
    all_faces = estimator.detect(three_faces)
    estimator.configure(max_faces=1)
    try:
        only = estimator.detect(three_faces)
    finally:
        estimator.configure(max_faces=16)
    assert len(only) == 1
    assert np.allclose(only[0].box, all_faces[0].box)


def test_threshold_is_respected(estimator, two_faces) -> None:
    top = EstimatorOptions.LIMITS["score_threshold"][1]
    estimator.configure(score_threshold=top)
    try:
        strict = estimator.detect(two_faces)
    finally:
        estimator.configure(score_threshold=0.6)
    assert all(d.score > top for d in strict)
    estimator.detector.score_threshold = 0.999999  # beyond the options' range: the detector
    try:                                           # itself still holds to it
        stricter = estimator.detector(two_faces)
    finally:
        estimator.detector.score_threshold = 0.6
    assert all(d.score > 0.999999 for d in stricter)


@pytest.mark.parametrize("fixture", ["one_face", "two_faces", "three_faces"])
def test_the_mirrored_look_maps_boxes_back(request: pytest.FixtureRequest, estimator,
                                           fixture: str) -> None:
    """The retry's boxes (the prepared input mirrored) are the boxes found in the mirrored
    image, mirrored back: the faces of each image, where they are, to a pixel or two."""
    import cv2

    image = request.getfixturevalue(fixture)
    detector, w = estimator.detector, image.shape[1]
    detector.preprocess(image)
    detector.mirror_input()
    retried = detector.postprocess(*detector.infer(), w, image.shape[0], mirrored=True)
    flipped = detector(cv2.flip(image, 1), far=False)
    expected = sorted(([w - d.box[2], d.box[1], w - d.box[0], d.box[3]] for d in flipped),
                      key=lambda b: b[0])
    got = sorted((d.box for d in retried), key=lambda b: b[0])
    assert len(got) == len(expected) == len(estimator.detect(image, far=False))
    for a, b in zip(got, expected):
        assert np.max(np.abs(a - np.array(b))) < 0.01 * w


@pytest.fixture
def profile() -> tuple[np.ndarray, np.ndarray]:
    """AFLW2000-3D's image01509 (yaw 80 deg), which the detector scores below threshold one
    way round and 1.0 the other, and its labelled face centre."""
    from helpers import SHARED

    from dense_head_pose import images
    from dense_head_pose.evaluation import aflw2000_labels as evaluation

    folder = SHARED / "benchmarks" / "AFLW2000"
    if not (folder / "image01509.jpg").is_file():
        pytest.skip(f"no AFLW2000-3D at {folder}")
    image = images.read(str(folder / "image01509.jpg"))
    return image, evaluation._loadmat(folder / "image01509.mat")["pt3d_68"][:2].mean(axis=1)


def test_the_mirrored_retry_finds_a_profile(estimator, profile) -> None:
    """The retry finds the profile, only when asked to."""
    image, centre = profile
    try:
        estimator.configure(retry_mirrored=False)
        assert estimator.detect(image) == []
        estimator.configure(retry_mirrored=True)
        found = estimator.detect(image)
    finally:
        estimator.configure(retry_mirrored=True)
    assert len(found) == 1 and found[0].score > 0.9
    x1, y1, x2, y2 = found[0].box
    assert x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2


def test_a_tracker_scanning_an_empty_scene_alternates_the_views(estimator, profile) -> None:
    """With no face tracked, the tracker looks at the frame and its mirror on alternate
    frames: one detector inference per frame (the estimator's retry would take two on every
    empty frame), and the profile is found on the second frame and then kept."""
    from dense_head_pose.video.tracking import FaceTracker

    image, centre = profile
    empty = np.full_like(image, 120)
    model = estimator.detector._input_for(TRAINED_INPUT).model
    assert estimator.detector.far_size(image.shape[1], image.shape[0]) is None
    calls = []
    run = model.run
    model.run = lambda *a: calls.append(1) or run(*a)  # counts the real inferences
    try:
        tracker = FaceTracker(estimator)
        for i in range(6):
            assert tracker(empty, i / 30).faces == []
        assert len(calls) == 6
        tracker = FaceTracker(estimator)
        found = [len(tracker(image, i / 30).faces) for i in range(6)]
        before = len(calls)
        assert estimator(empty).faces == [] and len(calls) == before + 2  # + the retry
    finally:
        del model.run
    assert found == [0, 1, 1, 1, 1, 1]
    box = tracker(image, 0.3).faces[0].box
    assert box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3]


@pytest.mark.parametrize("size", [(9000, 17), (2000, 8), (17, 9000), (8, 2000)])
def test_a_frame_with_no_room_for_a_face_gives_none(estimator, one_face, size) -> None:
    """A strip a few pixels high holds no face (stretched into the detector's input it gave
    one at score 1.0, landmarks spanning 870 pixels of a 17-pixel frame)."""
    assert estimator(cv2.resize(one_face, size)).faces == []


def test_a_panorama_keeps_its_faces_in_shape(estimator, one_face) -> None:
    """A face in a 6:1 panorama is found where it is, a face-shaped box inside the frame:
    the panorama is letterboxed into the detector's input, not stretched six-fold."""
    face = cv2.resize(one_face, (one_face.shape[1] * 400 // one_face.shape[0], 400))
    canvas = np.full((500, 3000, 3), 90, np.uint8)
    x0 = 1500 - face.shape[1] // 2
    canvas[50:450, x0:x0 + face.shape[1]] = face
    found = estimator(canvas).faces
    assert len(found) == 1
    box = found[0].box
    assert box[0] >= 0 and box[2] <= 3000 and box[1] >= 0 and box[3] <= 500
    assert 0.8 < (box[3] - box[1]) / (box[2] - box[0]) < 1.8
    assert x0 < (box[0] + box[2]) / 2 < x0 + face.shape[1]
