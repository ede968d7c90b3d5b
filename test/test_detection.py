"""RFB-320 detection on real images."""

from __future__ import annotations

import numpy as np
import pytest

from dense_head_pose.detection import make_priors


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
    estimator.configure(score_threshold=0.999999)
    try:
        strict = estimator.detect(two_faces)
    finally:
        estimator.configure(score_threshold=0.6)
    assert len(strict) < 2 or all(d.score > 0.999999 for d in strict)
