"""Video: landmark tracking, identities and smoothing, on clips made from real images."""

from __future__ import annotations

import numpy as np
import pytest

from dense_head_pose import CameraIntrinsics
from dense_head_pose.evaluation import stability
from dense_head_pose.pipeline.alignment import roi_from_landmarks
from dense_head_pose.pipeline.estimator import Fit
from dense_head_pose.pipeline.pose import view_rotation
from dense_head_pose.video.motion_filter import MAX_GAP_S, MotionFilter, MotionParams
from dense_head_pose.video.smoothing import QUANTITIES, SmoothingOptions
from dense_head_pose.video.streams import TrackerPool
from dense_head_pose.video.tracking import FaceTracker, TrackerOptions, box_iou

TRANSPARENT = MotionParams(noise=1e-9, drift=1e6, acceleration=1e9)
UNIT = MotionParams(noise=1.0, drift=0.01, acceleration=100.0)


def _canvas(face: np.ndarray, places: list[tuple[int, int]], size=(720, 1280)) -> np.ndarray:
    """A grey frame with the face image pasted at each (x, y)."""
    frame = np.full((*size, 3), 110, np.uint8)
    h, w = face.shape[:2]
    for x, y in places:
        frame[y:y + h, x:x + w] = face
    return frame


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[5, 0, 15, 10]], float)
    assert np.allclose(box_iou(a, b), [[50 / 150], [0.0]])


# ------------------------------------------------------------------------------- filters
def test_motion_filter_time_rules() -> None:
    f = MotionFilter([(2, UNIT)])
    one = np.ones(1)
    assert np.allclose(f(np.array([1.0, 2.0]), 0.0, one), [1.0, 2.0])  # first sample passes
    out = f(np.array([2.0, 2.0]), 0.1, one)
    assert 1.0 < out[0] < 2.0
    assert np.allclose(f(np.array([50.0, 50.0]), 0.1, one), out)  # same instant: held
    assert np.allclose(f(np.array([7.0, 7.0]), 0.05, one), [7.0, 7.0])  # backwards: restart
    f(np.array([7.0, 7.0]), 0.1, one)
    # a stream that stalled for minutes: no prediction across the gap, a restart
    assert np.allclose(f(np.array([-3.0, 4.0]), 0.1 + 120.0, one), [-3.0, 4.0])
    assert MAX_GAP_S < 120.0
    with pytest.raises(ValueError):
        MotionParams(noise=0.0, drift=1.0, acceleration=1.0)
    with pytest.raises(TypeError):
        MotionParams(noise="low", drift=1.0, acceleration=1.0)


def test_motion_filter_steadies_a_still_value_and_follows_a_steady_motion() -> None:
    """Still: the noise falls to well under a third. Moving at a steady speed (six noise
    deviations a frame): no lag, the error no larger than the noise."""
    rng = np.random.default_rng(7)
    still, moving = MotionFilter([(3, UNIT)]), MotionFilter([(3, UNIT)])
    out_still, err_moving = [], []
    for k in range(120):
        t = k / 30.0
        out_still.append(still(rng.normal(0.0, 1.0, 3), t, np.ones(1)))
        truth = 6.0 * k
        err_moving.append(moving(truth + rng.normal(0.0, 1.0, 3), t, np.ones(1)) - truth)
    assert np.std(np.array(out_still)[30:]) < 1.0 / 3.0
    assert still.still_probability[0] > 0.9
    err = np.array(err_moving)[30:]
    assert abs(err.mean()) < 0.25  # no lag: a trailing filter would sit a step behind
    assert np.sqrt(np.mean(err ** 2)) < 1.0
    assert moving.still_probability[0] < 0.1


def test_each_group_of_the_filter_decides_alone() -> None:
    rng = np.random.default_rng(8)
    f = MotionFilter([(2, UNIT), (3, UNIT)])
    outs = []
    for k in range(90):
        z = rng.normal(0.0, 1.0, 5)
        z[:2] += 5.0 * k  # the first group moves, the second does not
        outs.append(f(z, k / 30.0, np.ones(2)))
    assert f.still_probability[0] < 0.1 < 0.9 < f.still_probability[1]
    assert np.std(np.array(outs)[30:, 2:]) < 1.0 / 3.0


# ------------------------------------------------------------------------------ tracker
def test_track_quality_separates_faces_from_background(estimator, one_face) -> None:
    face = estimator(one_face).faces[0]
    roi = roi_from_landmarks(face.landmarks)
    on_face = estimator.fit(one_face, roi)
    assert on_face.quality > 0.9
    background = _canvas(np.zeros((1, 1, 3), np.uint8), [])
    side = roi[2] - roi[0]
    off = [estimator.fit(background, np.array([x, 100, x + side, 100 + side]))
           for x in (100, 500, 900)]
    assert all(fit.quality < 0.85 for fit in off)


def test_still_clip_jitter_is_below_raw(estimator, one_face) -> None:
    clip = stability.still_clip(one_face, n=40)
    reference = estimator(one_face).faces[0]
    raw = stability.still_metrics([estimator(f) for f in clip.frames()], reference, clip)
    tracker = FaceTracker(estimator)
    tracked = stability.still_metrics([tracker(f, t) for f, t in zip(clip.frames(), clip.times)],
                                      reference, clip)
    assert tracked["found"] == 1.0
    for key in ("yaw_std", "pitch_std", "roll_std", "translation_mm", "landmarks_pct"):
        assert tracked[key] < 0.5 * raw[key], key
    assert tracker.detections_run <= 40 // tracker.options.detect_every + 1


def test_turning_heads_are_followed_without_lag(estimator, one_face) -> None:
    """Against the known motion, each from its own estimate of the clean image: the head
    rolled in the image plane and turned out of it (yaw, drawn from its own 3DMM)."""
    report = stability.evaluate(estimator, lambda: FaceTracker(estimator), [("one", one_face)],
                                still_frames=20, moving_frames=45,
                                clips=("roll", "yaw"))
    row = report["faces"][0]
    for clip in ("roll", "yaw"):
        tracked, raw = row["tracked"][clip], row["raw"][clip]
        assert tracked["found"] == 1.0
        assert tracked["rotation_rms_deg"] < 1.35 * raw["rotation_rms_deg"], clip
        assert tracked["landmarks_rms_pct"] < 1.35 * raw["landmarks_rms_pct"], clip
        assert abs(tracked["lag_frames"]) <= 1.0, clip
    assert 0.0 <= row["tracker_offset_deg"] < 3.0


def test_small_faces_are_smoothed_as_much_as_large_ones(estimator, two_faces) -> None:
    """Noise is about constant in pixels, so a 60-pixel face jitters more in face units:
    the filter's noise scales with the face (motion_filter.REFERENCE_SIDE)."""
    report = stability.evaluate(estimator, lambda: FaceTracker(estimator),
                                [("two", two_faces)], still_frames=60, moving_frames=20,
                                face_sizes=[60], clips=("still",))
    for small in (r for r in report["faces"] if r["image"] == "two @60px"):
        for key in ("yaw_std", "pitch_std", "roll_std", "landmarks_pct"):
            assert small["tracked"]["still"][key] < 0.4 * small["raw"]["still"][key], key


def test_smoothing_off_reproduces_the_raw_estimates(estimator, video_frames) -> None:
    # detect_every=1, no smoothing: exactly the per-image pipeline, with ids
    tracker = FaceTracker(estimator, detect_every=1, smooth=False)
    for frame in video_frames[:6]:
        got, want = tracker(frame).faces, estimator(frame).faces
        assert len(got) == len(want) == 1
        assert np.array_equal(got[0].landmarks, want[0].landmarks)
        assert np.array_equal(got[0].pose.translation, want[0].pose.translation)
        assert got[0].id == 1
    # landmark tracking, no smoothing: each face is exactly the fit of its crop
    tracker = FaceTracker(estimator, smooth=False)
    for i, frame in enumerate(video_frames[:12]):
        face = tracker(frame, i / 25).faces[0]
        fit = estimator.fit(frame, face.roi)
        assert np.array_equal(face.landmarks, fit.landmarks)
        assert np.array_equal(face.params, fit.params)


def test_transparent_filters_change_nothing(estimator, video_frames) -> None:
    """The smoother rebuilds the camera from rotation, scales, shear and position: with
    filters that pass everything it must give back the unsmoothed fit."""
    transparent = SmoothingOptions(**{q: TRANSPARENT for q in QUANTITIES})
    plain = FaceTracker(estimator, smooth=False)
    smoothed = FaceTracker(estimator, smoothing=transparent)
    for i, frame in enumerate(video_frames[:10]):
        a, b = plain(frame, i / 25).faces[0], smoothed(frame, i / 25).faces[0]
        assert np.allclose(a.landmarks, b.landmarks, atol=1e-3)
        assert np.allclose(a.camera, b.camera, atol=1e-9)
        assert a.yaw == pytest.approx(b.yaw, abs=1e-4)  # degrees


def test_repeated_and_backwards_timestamps(estimator, video_frames) -> None:
    tracker = FaceTracker(estimator)
    for i in range(5):
        first = tracker(video_frames[i], i / 25).faces[0]
    again = tracker(video_frames[9], 4 / 25).faces[0]  # same instant, another frame
    assert np.allclose(again.landmarks, first.landmarks)  # nothing new at the same time
    # time going back (a looping bag) starts over: as a fresh tracker would
    back = tracker(video_frames[20], 0.0).faces[0]
    fresh = FaceTracker(estimator)(video_frames[20], 0.0).faces[0]
    assert np.allclose(back.landmarks, fresh.landmarks)
    assert back.id != first.id  # a new start, ids are never reused


def test_face_that_leaves_and_returns_keeps_its_id(estimator, one_face) -> None:
    tracker = FaceTracker(estimator, detect_every=5)
    with_face, without = _canvas(one_face, [(400, 80)]), _canvas(one_face, [])
    ids = []
    for i in range(24):
        frame = without if 8 <= i < 14 else with_face
        faces = tracker(frame, i / 30).faces
        ids.append(faces[0].id if faces else None)
    assert ids[:8] == [1] * 8
    assert ids[8:14] == [None] * 6  # gone: reported as gone at once
    assert set(ids[14:]) == {1}  # back where it left: the same id


def test_new_face_is_found_within_detect_every_frames(estimator, one_face) -> None:
    every = 6
    tracker = FaceTracker(estimator, detect_every=every)
    one, two = _canvas(one_face, [(100, 80)]), _canvas(one_face, [(100, 80), (760, 100)])
    arrival, found = 9, None
    for i in range(arrival + every + 2):
        faces = tracker(two if i >= arrival else one, i / 30).faces
        if i >= arrival and len(faces) == 2 and found is None:
            found = i
        if i < arrival:
            assert [f.id for f in faces] == [1]
    assert found is not None and found - arrival < every
    assert sorted(f.id for f in tracker(two, 1.0).faces) == [1, 2]


def test_state_resets_when_the_image_size_or_the_camera_changes(estimator, one_face) -> None:
    tracker = FaceTracker(estimator)
    frame = _canvas(one_face, [(100, 80)])
    a = tracker(frame, 0.0, stream="cam_a").faces[0]
    # new intrinsics for the same camera: nothing restarts (tracking is in the image)
    b = tracker(frame, 0.1, CameraIntrinsics(900.0, 900.0, 640.0, 360.0), stream="cam_a")
    assert b.faces[0].id == a.id
    c = tracker(frame, 0.2, stream="cam_b").faces[0]  # another camera
    d = tracker(_canvas(one_face, [(100, 80)], size=(700, 1200)), 0.3, stream="cam_b").faces[0]
    assert len({a.id, c.id, d.id}) == 3


def test_options_are_validated() -> None:
    with pytest.raises(TypeError):
        TrackerOptions(detect_every=2.5)
    with pytest.raises(ValueError):
        TrackerOptions(detect_every=0)
    with pytest.raises(TypeError):
        TrackerOptions(smooth="no")


def test_smoothed_rotation_and_angles_agree(estimator, one_face) -> None:
    """A smoothed face is a consistent face: its angles are those of its camera."""
    clip = stability.still_clip(one_face, n=10)
    tracker = FaceTracker(estimator)
    for f, t in zip(clip.frames(), clip.times):
        face = tracker(f, t).faces[0]
    rot = view_rotation(face.camera)[0]
    intrinsics = CameraIntrinsics.default(one_face.shape[1], one_face.shape[0])
    rebuilt = estimator.face_from_fit(Fit(face.roi, face.params, face.camera, face.landmarks),
                                      face.box, face.score, intrinsics)
    assert (rebuilt.yaw, rebuilt.pitch, rebuilt.roll) == pytest.approx(
        (face.yaw, face.pitch, face.roll), abs=1e-9)
    assert np.allclose(rebuilt.pose.translation, face.pose.translation)
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-9)


def test_subnormal_time_steps_keep_the_face(estimator, one_face) -> None:
    tracker = FaceTracker(estimator)
    counts = [len(tracker(one_face, i * 1e-310).faces) for i in range(12)]
    assert counts == [1] * 12
    face = tracker(one_face, 12 * 1e-310).faces[0]
    assert np.all(np.isfinite(face.landmarks)) and np.isfinite(face.yaw)


def test_max_faces_lowered_at_run_time_applies_at_once(estimator, two_faces) -> None:
    tracker = FaceTracker(estimator, TrackerOptions(detect_every=10))
    assert len(tracker(two_faces, 0.0).faces) == 2
    assert len(tracker(two_faces, 0.04).faces) == 2
    estimator.configure(max_faces=0)
    try:
        assert tracker(two_faces, 0.08).faces == []
        estimator.configure(max_faces=1)
        assert len(tracker(two_faces, 0.12).faces) == 1
    finally:
        estimator.configure(max_faces=16)


def test_cameras_alternating_on_one_stream_keep_their_ids(estimator, one_face, two_faces
                                                          ) -> None:
    pool = TrackerPool(estimator)
    seen: dict[str, set] = {"left": set(), "right": set()}
    for i in range(20):
        t = i / 30.0
        for name, image in (("left", one_face), ("right", two_faces)):
            seen[name] |= {f.id for f in pool(image, t, stream=name).faces}
    assert len(seen["left"]) == 1 and len(seen["right"]) == 2  # no renewals
    assert not seen["left"] & seen["right"]  # ids unique across cameras
    for k in range(12):  # made-up stream names cannot grow the pool
        pool(one_face, 1.0, stream=f"fake{k}")
    assert len(pool.streams) == pool.max_streams


def test_a_leap_in_time_restarts_the_filters_not_the_identity(estimator, one_face) -> None:
    """A stream that stalls for minutes: the face is still there, so it keeps its id, but
    nothing is predicted across the gap: its first estimate after it is the plain fit."""
    frame = _canvas(one_face, [(300, 80)])
    tracker = FaceTracker(estimator)
    for i in range(6):
        before = tracker(frame, i / 30).faces[0]
    after = tracker(frame, 5 / 30 + 300.0).faces[0]
    assert after.id == before.id
    plain = estimator.fit(frame, after.roi)
    assert np.allclose(after.landmarks, plain.landmarks, atol=1e-6)


def test_a_face_gone_for_one_frame_keeps_its_id(estimator, one_face) -> None:
    tracker = FaceTracker(estimator)
    with_face, without = _canvas(one_face, [(300, 80)]), _canvas(one_face, [])
    ids = [[f.id for f in tracker(without if i == 5 else with_face, i / 30).faces]
           for i in range(10)]
    assert ids[5] == [] and all(i == [1] for k, i in enumerate(ids) if k != 5)


def test_a_face_that_jumps_away_is_a_new_face_with_fresh_filters(estimator, one_face) -> None:
    """Faster than any head turns (a cut in the video, or another person where the first
    one stood a frame ago): the track is lost, the face found again far away gets a new
    id, and its estimate is not dragged from where the old one was."""
    tracker = FaceTracker(estimator)
    for i in range(8):
        first = tracker(_canvas(one_face, [(100, 80)]), i / 30).faces
    jumped = tracker(_canvas(one_face, [(760, 100)]), 8 / 30).faces
    assert [f.id for f in first] == [1] and [f.id for f in jumped] == [2]
    face = jumped[0]
    assert np.allclose(face.landmarks, estimator.fit(_canvas(one_face, [(760, 100)]),
                                                     face.roi).landmarks, atol=1e-6)
