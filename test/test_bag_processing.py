"""``dense-head-pose bag``: real rosbag2 recordings of the test video in, the node's outputs,
a CSV and a plot out; and recordings as they come (killed, cut off, corrupt messages,
encodings the node does not take, stamps going back, topics of another type), an
interrupted run, several bags at once. No ROS needed: ``rosbags`` reads and writes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_files import (
    PERIOD_NS,
    T0_NS,
    as_killed_recording,
    read_bag,
    truncate,
    write_camera_bag,
)
from helpers import PACK

from dense_head_pose.cli import main
from dense_head_pose.interfaces.camera_info import stamp_ns
from dense_head_pose.pipeline.estimator import EstimatorOptions, HeadPoseEstimator
from dense_head_pose.pipeline.pose import CameraIntrinsics
from dense_head_pose.recordings.bag_types import typestore
from dense_head_pose.recordings.plot import gaps_as_nan
from dense_head_pose.recordings.process import process_bag
from dense_head_pose.recordings.summary import BagOptions
from dense_head_pose.video.streams import TrackerPool
from dense_head_pose.video.tracking import TrackerOptions

HRI = typestore()[1]  # hri_msgs' definitions found (a colcon build sourced, ROS installed)


@pytest.fixture(scope="module")
def small(video_frames) -> list[np.ndarray]:
    """The test video at 640x360: the same faces, a quarter of the decoding."""
    return [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in video_frames]


@pytest.fixture(scope="module")
def node_estimator() -> HeadPoseEstimator:
    return HeadPoseEstimator.from_model_dir(PACK, EstimatorOptions(max_faces=8))


def _bag(tmp_path: Path, *args: str) -> int:
    return main(["bag", *args, "--models", str(PACK)])


def _poses(out: Path, topic: str = "/head_pose") -> list:
    return [m for _, m in read_bag(out).get(topic, [])]


def test_outputs_are_what_the_pipeline_gives_stamp_for_stamp(tmp_path, small,
                                                             node_estimator) -> None:
    """The bag's /head_pose, /faces and CSV hold, for every frame, what the estimator and
    tracker give for that frame with its stamp and CameraInfo, stamped with it."""
    frames = small[:30]
    recording = write_camera_bag(tmp_path / "rec", frames)
    out, table = tmp_path / "out", tmp_path / "poses.csv"
    assert _bag(tmp_path, str(recording), "--out", str(out), "--csv", str(table)) == 0
    pool = TrackerPool(node_estimator, TrackerOptions())
    expected = []
    for i, frame in enumerate(frames):
        stamp = T0_NS + i * PERIOD_NS
        result = pool(frame, stamp * 1e-9, CameraIntrinsics(640, 640, 320, 180),
                      stream="camera_optical")
        expected.append((stamp, result.faces))
    messages = read_bag(out)
    faces = [m for _, m in messages["/faces"]]
    assert [stamp_ns(m.header.stamp) for m in faces] == [s for s, _ in expected]
    poses = [m for _, m in messages["/head_pose"]]
    with_face = [(s, f) for s, f in expected if f]
    assert len(poses) == len(with_face) >= 25
    for msg, (stamp, got) in zip(poses, with_face):
        assert stamp_ns(msg.header.stamp) == stamp
        assert msg.header.frame_id == "camera_optical"
        p = msg.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], got[0].pose.translation, atol=1e-9)
    # logged at the recording's times, as a recorder beside the live node would have
    assert messages["/faces"][0][0] == T0_NS + 1000
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == sum(len(f) for _, f in expected)
    assert rows[0]["stamp"] == f"{T0_NS // 10**9}.{T0_NS % 10**9:09d}"
    assert float(rows[0]["yaw_deg"]) == pytest.approx(with_face[0][1][0].yaw, abs=1e-3)
    assert {m.header.frame_id for _, m in messages["/tf"] for m in m.transforms} == \
        {"camera_optical"} | {f"face_{r['id']}" for r in rows}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_mirrored_camera_mirrors_yaw_and_roll(tmp_path, small, storage) -> None:
    """Two cameras in one bag, the second seeing the first's frames mirrored: outputs under
    each camera's namespace, ids prefixed by camera, yaw and roll of opposite signs."""
    recording = write_camera_bag(tmp_path / "rec", small[:20], storage=storage,
                                 cameras=("/front", "/back"))
    out, table = tmp_path / "out", tmp_path / "poses.csv"
    assert _bag(tmp_path, str(recording), "--out", str(out), "--csv", str(table),
                "--storage", storage) == 0
    assert (out / f"out.{'mcap' if storage == 'mcap' else 'db3'}").exists()
    rows = list(csv.DictReader(table.open()))
    by_camera = {c: [r for r in rows if r["camera"] == f"/{c}/image_raw"]
                 for c in ("front", "back")}
    assert len(by_camera["front"]) == len(by_camera["back"]) == 20
    assert all(r["id"].startswith("front_") for r in by_camera["front"])
    assert all(r["id"].startswith("back_") for r in by_camera["back"])
    yaw = np.array([[float(r["yaw_deg"]) for r in by_camera[c]] for c in ("front", "back")])
    roll = np.array([[float(r["roll_deg"]) for r in by_camera[c]] for c in ("front", "back")])
    assert np.all(np.abs(yaw[0]) > 10)  # the test video's speaker looks aside
    assert np.all(np.sign(yaw[0]) == -np.sign(yaw[1]))
    assert np.median(np.abs(yaw[0] + yaw[1])) < 3.0
    assert np.median(np.abs(roll[0] + roll[1])) < 3.0
    messages = read_bag(out)
    assert len(messages["/front/head_pose"]) == len(messages["/back/head_pose"]) == 20
    if HRI:
        tracked = [list(m.ids) for _, m in messages["/humans/faces/tracked"]]
        assert sorted(i.split("_")[0] for i in tracked[-1]) == ["back", "front"]
        assert "/front/humans/faces/tracked" in messages


def test_compressed_images_and_the_plot(tmp_path, small) -> None:
    recording = write_camera_bag(tmp_path / "rec", small[:12], jpeg=True)
    plot = tmp_path / "pose.png"
    assert _bag(tmp_path, str(recording), "--plot", str(plot)) == 0
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[0] > 400 and image.std() > 10


def test_a_face_lost_breaks_the_plotted_line() -> None:
    t, values = gaps_as_nan([(0.0, 1, 2, 3), (0.04, 1, 2, 3), (0.5, 1, 2, 3)], 0.04)
    assert list(np.isnan(values[:, 0])) == [False, False, True, False]
    assert np.isnan(t[2]) and t[3] == 0.5


def test_a_killed_recording_is_read_whole(tmp_path, small) -> None:
    """No metadata.yaml (ros2 bag record killed): every message is still there."""
    for storage in ("mcap", "sqlite3"):
        recording = as_killed_recording(write_camera_bag(tmp_path / f"rec_{storage}",
                                                         small[:15], storage=storage))
        out = tmp_path / f"out_{storage}"
        summary = process_bag(recording, HeadPoseEstimator.from_model_dir(PACK),
                              TrackerOptions(), BagOptions(out=out))
        assert summary.frames_read == summary.frames_processed == 15
        assert summary.recovered and "metadata.yaml" in summary.recovered
        assert len(_poses(out)) == 15


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_cut_off_recording_loses_only_its_tail(tmp_path, small, storage) -> None:
    recording = write_camera_bag(tmp_path / "rec", small[:40], storage=storage)
    cut = truncate(recording, 0.6)
    out = tmp_path / "out"
    summary = process_bag(cut, HeadPoseEstimator.from_model_dir(PACK), TrackerOptions(),
                          BagOptions(out=out))
    # about 60 % of the frames are whole before the cut
    assert 18 <= summary.frames_read <= 26, summary.lines()
    assert summary.frames_processed == summary.frames_read
    if storage == "mcap":  # sqlite3 pages before the cut read whole, or not at all
        assert any("unreadable" in p for p in summary.problems), summary.problems
    poses = _poses(out)
    assert len(poses) == summary.frames_read
    assert [stamp_ns(p.header.stamp) for p in poses] == \
        [T0_NS + i * PERIOD_NS for i in range(len(poses))]


def test_bad_messages_are_counted_and_the_rest_processed(tmp_path, small) -> None:
    """Frame 3: bytes that are not an Image; 5: an encoding the node does not take; 7: data
    cut short; 9: an empty image. Each is counted; the unusable ones get the node's answer
    (an empty FaceArray, image size 0); every other frame is processed."""
    store, _ = typestore()

    def damage(i: int, topic: str, data: bytes) -> bytes:
        msg = store.deserialize_cdr(data, "sensor_msgs/msg/Image")
        if i == 3:
            return data[:40]
        if i == 5:
            msg.encoding = "bayer_grbg8"
        elif i == 7:
            msg.data = msg.data[: len(msg.data) // 2]
        elif i == 9:
            msg.height = msg.width = msg.step = 0
            msg.data = np.zeros(0, np.uint8)
        return bytes(store.serialize_cdr(msg, "sensor_msgs/msg/Image"))

    recording = write_camera_bag(tmp_path / "rec", small[:12], damage=damage)
    out = tmp_path / "out"
    summary = process_bag(recording, HeadPoseEstimator.from_model_dir(PACK), TrackerOptions(),
                          BagOptions(out=out))
    assert summary.undeserializable == 1
    assert summary.frames_unusable == 3
    assert summary.frames_read == 11 and summary.frames_processed == 8
    faces = [m for _, m in read_bag(out)["/faces"]]
    assert len(faces) == 11
    empty = [m for m in faces if m.image_width == 0]
    assert len(empty) == 3 and all(len(m.faces) == 0 for m in empty)
    assert len(_poses(out)) == 8


def test_corrupt_jpeg_frames_are_counted(tmp_path, small) -> None:
    store, _ = typestore()

    def damage(i: int, topic: str, data: bytes) -> bytes:
        if i in (2, 4):  # not JPEG at all; a JPEG cut off (OpenCV 4.5 decodes that)
            msg = store.deserialize_cdr(data, "sensor_msgs/msg/CompressedImage")
            msg.data = (np.frombuffer(b"not an image" * 50, np.uint8) if i == 2
                        else msg.data[: len(msg.data) * 2 // 3])
            return bytes(store.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
        return data

    recording = write_camera_bag(tmp_path / "rec", small[:8], jpeg=True, damage=damage)
    summary = process_bag(recording, HeadPoseEstimator.from_model_dir(PACK), TrackerOptions(),
                          BagOptions())
    assert summary.frames_unusable == 2 and summary.frames_processed == 6


def test_stamps_going_back_restart_the_tracks(tmp_path, small) -> None:
    stamps = [T0_NS + i * PERIOD_NS for i in range(16)]
    stamps[8:] = [s - 5 * 10**9 for s in stamps[8:]]  # a clock jumping back 5 s
    recording = write_camera_bag(tmp_path / "rec", small[:16], stamps=stamps)
    out = tmp_path / "out"
    summary = process_bag(recording, HeadPoseEstimator.from_model_dir(PACK), TrackerOptions(),
                          BagOptions(out=out))
    assert summary.stamps_back == 1 and summary.frames_processed == 16
    assert summary.face_ids == 2  # a new track after the jump, as live
    assert [stamp_ns(p.header.stamp) for p in _poses(out)] == stamps


def test_no_camera_info_uses_default_intrinsics(tmp_path, small) -> None:
    recording = write_camera_bag(tmp_path / "rec", small[:5], info=False)
    out = tmp_path / "out"
    with_info = write_camera_bag(tmp_path / "rec2", small[:5])  # K is f = width there too
    out2 = tmp_path / "out2"
    for rec, o in ((recording, out), (with_info, out2)):
        process_bag(rec, HeadPoseEstimator.from_model_dir(PACK), TrackerOptions(),
                    BagOptions(out=o))
    a, b = _poses(out), _poses(out2)
    assert len(a) == 5
    for p, q in zip(a, b):
        assert p.pose.position.z == pytest.approx(q.pose.position.z, abs=1e-9)


def test_wrong_topics_say_what_there_is(tmp_path, small, caplog) -> None:
    recording = write_camera_bag(tmp_path / "rec", small[:2])
    assert _bag(tmp_path, str(recording), "--image-topic", "/camera/camera_info") == 2
    assert "/camera/camera_info is sensor_msgs/msg/CameraInfo, not an image topic" in \
        caplog.text and "image topics: /camera/image_raw" in caplog.text
    caplog.clear()
    assert _bag(tmp_path, str(recording), "--image-topic", "/nope") == 2
    assert "no topic /nope; its image topics: /camera/image_raw" in caplog.text
    assert _bag(tmp_path, str(tmp_path / "missing")) == 2
    assert "no such bag" in caplog.text
    not_a_bag = tmp_path / "empty"
    not_a_bag.mkdir()
    assert _bag(tmp_path, str(not_a_bag)) == 2  # searched for bags: none
    assert "a directory holding no bag" in caplog.text


def test_existing_outputs_are_refused_before_any_work(tmp_path, small, caplog) -> None:
    recording = write_camera_bag(tmp_path / "rec", small[:2])
    table = tmp_path / "poses.csv"
    table.write_text("precious\n")
    assert _bag(tmp_path, str(recording), "--csv", str(table)) == 2
    assert "exists" in caplog.text and table.read_text() == "precious\n"


def test_several_bags_in_parallel_jobs(tmp_path, small, capsys) -> None:
    bags = [write_camera_bag(tmp_path / f"rec{i}", small[i * 5:i * 5 + 10]) for i in range(3)]
    out, tables = tmp_path / "out", tmp_path / "csv"
    assert _bag(tmp_path, *map(str, bags), "--out", str(out), "--csv", str(tables),
                "--jobs", "2", "--json") == 0
    for i in range(3):
        assert len(_poses(out / f"rec{i}")) == 10
        assert len(list(csv.DictReader((tables / f"rec{i}.csv").open()))) == 10
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 3 and all('"frames_processed":10,' in line for line in printed)


def test_bag_needs_no_ros(tmp_path) -> None:
    """The core bag module imports nothing of rclpy (the CLI runs on a laptop)."""
    code = ("import sys; import dense_head_pose.recordings.process, "
            "dense_head_pose.dataset.driver; "
            "print(any(m.startswith('rclpy') for m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == "False"
