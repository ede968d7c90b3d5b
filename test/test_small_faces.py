"""People across the room: the detector at any input size, and its far look.

The detector is converted from the upstream checkpoints (``models build``), resizes to any
input, and with ``detector_input="auto"`` looks at large frames twice: at 320x240 for faces
close by, and closely, at the frame's own resolution and enlarged, at the few places where
that look scores small faces likeliest (the far look, for faces of 25-100 pixels).
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers import SHARED, TESTDATA

from dense_head_pose import EstimatorOptions, HeadPoseEstimator
from dense_head_pose.pipeline.detection import (
    FaceDetector,
    make_priors,
    parse_input_size,
)
from dense_head_pose.runtime import TFLiteModel
from dense_head_pose.video.tracking import FaceTracker, TrackerOptions

UPSTREAM = SHARED / "upstream"


def across_the_room(image: np.ndarray, face_width: float, canvas=(1280, 720),
                    at=(0.7, 0.4)) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (one face, its box ``box``) scaled so the face is ``face_width`` pixels
    wide and put on a grey ``canvas`` at ``at`` (fractions); the canvas and the face's
    centre there."""
    box = np.array([128.0, 100.0, 291.0, 313.0])  # one_face.jpg's detector box
    scale = face_width / (box[2] - box[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((canvas[1], canvas[0], 3), 127, np.uint8)
    x0, y0 = int(at[0] * canvas[0]), int(at[1] * canvas[1])
    frame[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    centre = (box.reshape(2, 2).mean(axis=0)) * scale + [x0, y0]
    return frame, centre


def holds(box: np.ndarray, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def test_the_converted_detector_is_upstreams_network() -> None:
    """``models build`` writes RFB-320 from its checkpoint: on a real image at 320x240 its
    outputs are those of the TFLite file the upstream project published."""
    from dense_head_pose.model_build.detector_conversion import convert

    published = UPSTREAM / "RFB-320.tflite"
    if not published.is_file():
        pytest.skip(f"no {published}")
    import tempfile
    from pathlib import Path

    image = cv2.imread(str(SHARED / "testdata" / "two_faces.jpg"))
    rgb = cv2.cvtColor(cv2.resize(image, (320, 240)), cv2.COLOR_BGR2RGB).astype(np.float32)
    x = ((rgb - rgb.min()) / (rgb.max() - rgb.min()) * 2 - 1)[None]
    with tempfile.TemporaryDirectory() as scratch:
        ours = Path(scratch) / "rfb320.tflite"
        ours.write_bytes(convert(UPSTREAM / "version-RFB-320.pth", "test"))
        mine = TFLiteModel(ours, (1, 240, 320, 3)).run(x)
    theirs = TFLiteModel(published, (1, 240, 320, 3)).run(x)
    for a, b in zip(mine, theirs):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) < 2e-3
    assert np.max(mine[1][0, :, 1]) > 0.99  # it sees the faces


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (640, 360), (328, 184), (1280, 720)])
def test_the_detector_takes_any_input_size(estimator, one_face, size) -> None:
    """The priors follow the input, and the face is found where it is at every size."""
    detector = FaceDetector(estimator.detector._model_path, input_size=size)
    assert len(detector._current.priors) == len(make_priors(*size))
    found = detector(one_face)
    assert len(found) == 1 and found[0].score > 0.9
    assert holds(found[0].box, np.array([210.0, 206.0]))
    assert len(make_priors(640, 480)) == 17_640 and len(make_priors()) == 4420


def test_the_far_look_finds_a_face_across_the_room(estimator, one_face) -> None:
    """A 22-pixel face on a 720p frame: 5.5 pixels at 320x240, where the near look misses
    it; the far look, at the frame's resolution, finds it and nothing else."""
    frame, centre = across_the_room(one_face, 22)
    try:
        estimator.configure(detector_input="320x240")
        assert estimator.detect(frame) == []
        estimator.configure(detector_input="auto")
        found = estimator.detect(frame)
    finally:
        estimator.configure(detector_input="auto")
    assert len(found) == 1 and holds(found[0].box, centre)
    assert 16 < found[0].box[2] - found[0].box[0] < 32
    faces = estimator(frame).faces
    assert len(faces) == 1 and abs(faces[0].yaw) < 25


@pytest.mark.parametrize(("fixture", "count"), [("one_face", 1), ("two_faces", 2),
                                                 ("three_faces", 3)])
def test_the_far_look_adds_no_false_box(request, estimator, fixture, count) -> None:
    """The stills and 4x-reduced copies, and their mirror images: the faces, nothing more
    (an ear beside a face, which the far look of the mirrored debate still scores 0.95,
    is part of that face). The one false box known: a bokeh highlight in the mirror
    images of the 4K still (docs/accuracy.md)."""
    image = request.getfixturevalue(fixture)
    small = cv2.resize(image, (image.shape[1] // 4, image.shape[0] // 4),
                       interpolation=cv2.INTER_AREA)
    shown = [image, small]
    if fixture != "three_faces":
        shown += [cv2.flip(image, 1), cv2.flip(small, 1)]
    for frame in shown:
        assert len(estimator.detect(frame)) == count


def test_a_tracker_keeps_a_face_across_the_room(estimator, one_face) -> None:
    """The tracker runs the far look on the stream's first detection and then on one
    detection in k (k from its cost in near looks): it finds the small face on the first
    frame, and keeps it with one id through the detections that only look near."""
    import math

    from dense_head_pose.video.look_schedule import FAR_LOOK_SPREAD

    frame, centre = across_the_room(one_face, 22)
    cost = estimator.far_look_cost(frame.shape[1], frame.shape[0])
    assert 0.5 < cost < 2  # a few 192x192 places against one 320x240 frame
    k = math.ceil(FAR_LOOK_SPREAD * cost)
    tracker = FaceTracker(estimator, TrackerOptions(detect_every=5))
    rng = np.random.default_rng(3)
    found = []
    for i in range(k + 6 * k):
        noisy = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
        faces = tracker(noisy, i / 30).faces
        assert len(faces) <= 1
        found.append(faces[0] if faces else None)
    assert all(face is not None and holds(face.box, centre) for face in found)
    assert len({face.id for face in found}) == 1
    # one detection in detect_every frames: the small face, confirmed by the far look
    # only, is never lost and searched for again
    assert tracker.detections_run == 1 + (len(found) - 1) // 5


def test_a_person_across_the_room_who_comes_in_later_is_found_by_a_far_look(
        estimator, one_face) -> None:
    """A scene empty at the start: the first frame's far look finds nothing; the person who
    then appears across the room is found by the next far look, within k detections."""
    import math

    from dense_head_pose.video.look_schedule import FAR_LOOK_SPREAD

    frame, centre = across_the_room(one_face, 22)
    empty = np.full_like(frame, 110)
    k = math.ceil(FAR_LOOK_SPREAD * estimator.far_look_cost(frame.shape[1],
                                                                frame.shape[0]))
    tracker = FaceTracker(estimator, TrackerOptions(detect_every=5))
    assert tracker(empty, 0.0).faces == []
    found = [tracker(frame, (1 + i) / 30).faces for i in range(k + 2)]
    first = next(i for i, faces in enumerate(found) if faces)
    assert first <= k  # within k detections: a scan looks far on one in k
    assert all(len(faces) == 1 and holds(faces[0].box, centre) for faces in found[first:])


@pytest.mark.parametrize("shape", [(1, 1), (1, 500), (500, 1), (20, 5000), (5000, 20),
                                   (7, 7), (8, 8), (64, 2000)])
def test_odd_frames_give_a_defined_result(estimator, shape) -> None:
    """Frames of any size: a list of boxes inside the frame (empty when no face fits)."""
    frame = np.full((*shape, 3), 90, np.uint8)
    for found in (estimator.detect(frame), estimator(frame).faces):
        for d in found:
            assert 0 <= d.box[0] <= d.box[2] <= shape[1]


def test_an_input_larger_than_the_frame_scales_the_frame_up(estimator, one_face) -> None:
    small = cv2.resize(one_face, (103, 138), interpolation=cv2.INTER_AREA)
    detector = FaceDetector(estimator.detector._model_path, input_size=(1920, 1920))
    found = detector(small)
    assert len(found) <= 1  # a 1920x1920 input for a 103x138 frame: defined, if wasteful


@pytest.mark.parametrize("text", ["", "0x0", "640", "640x", "x480", "640x481", "abcxdef",
                                  "8x8", "4096x4096", "640x480x3", "-640x480", "auto "])
def test_a_detector_input_that_does_not_fit_is_refused(text) -> None:
    with pytest.raises(ValueError, match="detector input"):
        parse_input_size(text)
    with pytest.raises(ValueError, match="detector_input"):
        EstimatorOptions(detector_input=text)


def test_the_cli_refuses_a_detector_input_in_one_line(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "dense_head_pose", "image",
                           str(TESTDATA / "one_face.jpg"), "--detector-input", "640x481"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--detector-input" in errors[0] and "640x481" not in proc.stdout


def test_the_640_weights_load_and_find_faces(two_faces) -> None:
    """The network trained at 640x480 (docs/accuracy.md compares it) is in the pack."""
    estimator = HeadPoseEstimator.from_model_dir(detector_model="rfb640",
                                                 detector_input="640x480")
    assert len(estimator.detect(two_faces)) == 2
    with pytest.raises(ValueError, match="detector_model"):
        estimator.configure(detector_model="rfb320")


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (1920, 1080), (3840, 2160)])
def test_the_far_look_costs_a_few_small_looks_whatever_the_frame(estimator, one_face,
                                                                 size) -> None:
    """The far look looks closely at a few places the near look proposes, never at the
    whole frame at its resolution: its cost is a few small inputs at any frame size (the
    detector plans no input of the frame's size), and it finds a face across the room."""
    frame, centre = across_the_room(one_face, 0.05 * size[0], canvas=size)
    detector = FaceDetector(estimator.detector._model_path, input_size="auto")
    found = detector(frame)
    assert any(holds(d.box, centre) for d in found)
    assert set(detector._inputs) <= {(320, 240), (192, 192)}
    assert 0 < detector.far_cost(*size) <= 2.0
