"""Steadiness over many faces, and smoothing with later frames.

The stability set is made from real AFLW2000-3D faces (tuned on one half, reported on the
other), run through the real pipeline; the look-ahead smoother runs over the real test video
and over a real clip whose truth is known; a recording stopped mid-run writes every frame it
had estimated, the ones the look-ahead still held included.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import SHARED, TESTDATA, cli

from dense_head_pose.evaluation import stability
from dense_head_pose.evaluation.aflw2000_labels import load_aflw2000
from dense_head_pose.evaluation.stability_set import HALVES, choose_faces
from dense_head_pose.lifetime import Interrupted
from dense_head_pose.recordings.frame_loop import Camera, Frame, Trackers, run_frames
from dense_head_pose.video.look_ahead import LookAheadTracker
from dense_head_pose.video.sources import open_source
from dense_head_pose.video.tracking import FaceTracker, TrackerOptions

AFLW = SHARED / "benchmarks" / "AFLW2000"


@pytest.fixture(scope="module")
def samples() -> list:
    return load_aflw2000(AFLW)


def test_the_halves_share_no_face_and_span_every_yaw_band(samples) -> None:
    """Tuned on one half, reported on the other: never the same image in both; each half's
    choice spreads evenly over the three yaw bands."""
    tune = choose_faces(samples, "tune", 30)
    report = choose_faces(samples, "report", 30)
    assert len(tune) == len(report) == 30
    assert not {s.name for _, s in tune} & {s.name for _, s in report}
    assert all(i % 2 == HALVES.index("tune") for i, _ in tune)
    assert all(i % 2 == HALVES.index("report") for i, _ in report)
    for chosen in (tune, report):
        bands = [min(int(s.bin_yaw // 30), 2) for _, s in chosen]
        assert sorted(set(bands)) == [0, 1, 2] and all(bands.count(b) == 10 for b in range(3))


def test_the_stability_set_measures_every_follower_on_every_clip() -> None:
    """One labelled face at 100 px on a 1280x720 canvas, still and crossing: every follower
    (tracked, unsmoothed, look-ahead) has its figures beside the per-image ones, and the
    summary has a median and 90th percentile for each; smoothed with later frames, the
    still face jitters less than per image."""
    proc = cli("stability", "--aflw2000", AFLW, "--half", "tune", "--faces", "1",
               "--face-sizes", "100", "--clips", "still", "cross", "--still-frames", "40",
               "--moving-frames", "40", "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["half"] == "tune" and report["canvas"] == [1280, 720]
    assert report["followers"] == ["tracked", "unsmoothed", "look_ahead"]
    clips = {row["clip"]: row for row in report["rows"]}
    assert set(clips) == {"still", "cross"}
    for row in clips.values():
        for name in ("raw", *report["followers"]):
            assert row[name]["found"] == 1.0, (row["clip"], name, row[name])
    still = clips["still"]
    assert still["look_ahead"]["yaw_std"] < still["raw"]["yaw_std"]
    assert still["look_ahead"]["landmarks_pct"] < still["raw"]["landmarks_pct"]
    summary = report["summary"]["look_ahead"]["still"]["yaw_std"]
    assert summary["all"]["n"] == 1 and summary["size"]["100"]["n"] == 1
    assert "lag_frames" in report["summary"]["tracked"]["cross"]


def test_the_look_ahead_keeps_every_frame_and_face_in_order(estimator, video_frames) -> None:
    """Over the real test video: one result per frame, in order, each face with the id the
    live tracker gave it; the faces move with the video (not frozen) and differ from the
    live ones only by smoothing."""
    live = FaceTracker(estimator)
    ahead = LookAheadTracker(FaceTracker(estimator), frames=10)
    live_results, ahead_results = [], []
    for i, frame in enumerate(video_frames):
        live_results.append(live(frame, i / 25.0))
        ahead_results += ahead.push(frame, i / 25.0)
        assert len(ahead_results) <= len(live_results)
    ahead_results += ahead.finish()
    assert len(ahead_results) == len(live_results) == len(video_frames)
    for a, b in zip(ahead_results, live_results):
        assert [f.id for f in a.faces] == [f.id for f in b.faces]
        for fa, fb in zip(a.faces, b.faces):
            side = fb.box[2] - fb.box[0]
            assert np.abs(fa.landmarks[:, :2] - fb.landmarks[:, :2]).max() < 0.25 * side
    yaws = np.array([r.faces[0].yaw for r in ahead_results])
    assert np.ptp(yaws) > 5.0  # the head turns in the video, and the estimate follows


def test_the_look_ahead_steadies_a_still_face_without_lagging_a_turn(estimator,
                                                                     one_face) -> None:
    """A still clip (noise, sub-pixel shifts) and a yaw turn of known truth: with later
    frames, the still jitter is below the live filter's, and the turn's lag is below one
    frame."""
    clip = stability.still_clip(one_face, n=60)
    reference = estimator(clip.unmoved()).faces[0]
    followers = {"live": lambda: stability.Live(FaceTracker(estimator)),
                 "ahead": lambda: LookAheadTracker(FaceTracker(estimator), frames=15)}
    still = stability.clip_metrics(estimator, followers, clip)[0]
    for key in ("yaw_std", "pitch_std", "roll_std", "landmarks_pct"):
        assert still["ahead"][key] < still["raw"][key], (key, still)
    assert still["ahead"]["yaw_std"] <= still["live"]["yaw_std"] * 1.05, still
    turn = stability.turning_clip(one_face, reference, "yaw", 25.0, 0.5, n=60)
    moving = stability.clip_metrics(estimator, followers, turn)[0]
    assert abs(moving["ahead"]["lag_frames"]) < 1.0, moving


def test_a_stop_writes_the_frames_the_look_ahead_held(estimator, video_frames) -> None:
    """A stop signal in the middle of a recording (raised by the frame source, as the
    handler raises it): every frame estimated before it reaches the sinks, in order, the
    frames the look-ahead was still holding included; nothing after it."""
    camera = Camera("video")
    written: list[int] = []

    class Collect:
        def check_space(self) -> None:
            pass

        def write(self, frame: Frame, result) -> None:
            written.append(frame.index)
            assert result is not None and len(result.faces) == 1

        def close(self) -> None:
            written.append(-1)

    def frames():
        for i, image in enumerate(video_frames[:30]):
            yield Frame(camera, round(i / 25 * 1e9), image, index=i, time_s=i / 25)
        raise Interrupted(15)

    trackers = Trackers(estimator, TrackerOptions(look_ahead=12))
    with pytest.raises(Interrupted):
        run_frames(frames(), trackers, [Collect()])
    assert written == [*range(30), -1]


@pytest.fixture(scope="module")
def video_frames() -> list:
    with open_source(str(TESTDATA / "talking_head.mp4")) as source:
        return [frame for _, frame in source]
