"""The same answer as live: a recording made beside the running node, processed offline.

This process plays the test video (1280x720) to the real ``head_pose_node``, a frame at a
time, and records, as ``ros2 bag record`` would, the camera topics and the node's outputs
(serialized, off the wire, stamped on arrival) into a rosbag2 file. ``dense-head-pose bag``
then processes the camera topics of that recording, and its ``/head_pose``, ``/faces`` and
``/humans/faces/tracked`` must equal what the node published, stamp for stamp; its topics
carry the type hashes the node's publishers announce.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from bag_files import digests, raw_messages, read_bag
from helpers import PACK, TESTDATA
from ros_harness import (
    TIMEOUT_SCALE,
    NodeProcess,
    Probe,
    camera_info_msg,
    image_msg,
    require_ros,
    stamp,
)

pytestmark = pytest.mark.ros
require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from dense_head_pose.interfaces.camera_info import stamp_ns  # noqa: E402
from dense_head_pose.msg import FaceArray  # noqa: E402
from dense_head_pose.recordings.bag_types import typestore  # noqa: E402

#: frames played (the test video's first ones)
FRAMES = 55
NODE_PARAMS = {"image_qos": "reliable", "hri.deterministic_ids": True, "num_threads": 1}
RECORDED = {"/image": (Image, "sensor_msgs/msg/Image"),
            "/camera_info": (CameraInfo, "sensor_msgs/msg/CameraInfo"),
            "/head_pose": (PoseStamped, "geometry_msgs/msg/PoseStamped"),
            "/faces": (FaceArray, "dense_head_pose/msg/FaceArray")}


@pytest.fixture(scope="module")
def recording(rclpy_context, tmp_path_factory):
    """A bag recorded beside the live node, and the node's announced type hashes."""
    store, hri = typestore()
    topics = dict(RECORDED)
    if hri:
        from hri_msgs.msg import IdsList

        topics["/humans/faces/tracked"] = (IdsList, "hri_msgs/msg/IdsList")
    logs = tmp_path_factory.mktemp("replay")
    node = NodeProcess("head_pose_node", params=NODE_PARAMS, log_dir=logs)
    probe = Probe("replay_recorder")
    arrived: dict[str, list[tuple[int, bytes]]] = {t: [] for t in topics}
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    for topic, (msg_type, _) in topics.items():
        probe.node.create_subscription(
            msg_type, topic, lambda m, t=topic: arrived[t].append((time.time_ns(), bytes(m))),
            qos, raw=True)
    probe.subscribe(DiagnosticArray, "/diagnostics")
    probe.wait_for_publishers([t for t in topics if t not in ("/image", "/camera_info")])
    # one frame at a time, the next once the node has answered the last: the node takes every
    # frame however busy the machine (so live and offline see the same ones)
    images = probe.publisher(Image, "/image")
    infos = probe.publisher(CameraInfo, "/camera_info")
    probe.wait_for_subscribers(images, 2)
    try:
        video = cv2.VideoCapture(str(TESTDATA / "talking_head.mp4"))
        n = 0
        while n < FRAMES and (frame := video.read()[1]) is not None:
            t = stamp(1_700_000_000 + n // 5, (n % 5) * 200_000_000)
            h, w = frame.shape[:2]
            infos.publish(camera_info_msg(w, w, w / 2, h / 2, w, h, "camera_optical_frame", t))
            images.publish(image_msg(frame, "camera_optical_frame", t))
            n += 1
            assert probe.spin_until(lambda n=n: len(arrived["/faces"]) >= n
                                    and len(arrived["/image"]) >= n, 30), \
                (n, {t: len(v) for t, v in arrived.items()}, node.output())
        assert n >= 50
        probe.spin_for(2.0)  # the last diagnostics
        dropped = [kv.value for m in probe.received["/diagnostics"] for s in m.status
                   for kv in s.values if kv.key == "frames_dropped"]
        assert dropped and dropped[-1] == "0", "the node skipped frames: not comparable"
        info = {t: probe.node.get_publishers_info_by_topic(t) for t in topics}
        hashes = {t: str(i[0].topic_type_hash) for t, i in info.items()
                  if i and hasattr(i[0], "topic_type_hash")}
    finally:
        probe.destroy()
        assert node.stop() == 0
    bag = tmp_path_factory.mktemp("bags") / "recorded"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {t: writer.add_connection(t, name, typestore=store)
                       for t, (_, name) in topics.items()}
        merged = sorted((log, t, data) for t, items in arrived.items() for log, data in items)
        for log, topic, data in merged:
            writer.write(connections[topic], log, data)
    return {"bag": bag, "hashes": hashes, "hri": hri}


def _same_cdr(a: bytes, b: bytes) -> bool:
    """The same CDR message: equal bytes, but for the zero padding one serializer puts after
    the last field to the next 4-byte boundary (Fast DDS does, rosbags does not)."""
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and len(long) - len(short) < 4 and not any(
        long[len(short):])


def test_offline_equals_live_stamp_for_stamp(recording, tmp_path) -> None:
    out = tmp_path / "offline"
    result = subprocess.run(
        [sys.executable, "-m", "dense_head_pose", "bag", str(recording["bag"]),
         "--image-topic", "/image", "--out", str(out), "--deterministic-ids",
         "--models", str(PACK)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    live, offline = read_bag(recording["bag"]), read_bag(out)
    for topic in ("/head_pose", "/faces") + (("/humans/faces/tracked",)
                                              if recording["hri"] else ()):
        a = [m for _, m in live[topic]]
        b = [m for _, m in offline[topic]]
        assert [stamp_ns(m.header.stamp) for m in b] == [stamp_ns(m.header.stamp) for m in a]
        # byte for byte: every field (poses, landmarks, coefficients, ids), as serialized
        mine, theirs = raw_messages(out, topic), raw_messages(recording["bag"], topic)
        differ = [i for i, (x, y) in enumerate(zip(mine, theirs)) if not _same_cdr(x, y)]
        assert len(mine) == len(theirs) and not differ, (topic, differ[:5])
    assert len(live["/head_pose"]) >= 50
    # the offline bag's topics carry the type hashes the live publishers announce
    hashes = recording["hashes"]
    if hashes:  # Humble announces none
        got = digests(out)
        assert {t: got[t] for t in hashes if t in got} == \
            {t: h for t, h in hashes.items() if t in got}
        assert {"/head_pose", "/faces"} <= set(hashes) & set(got)


def test_type_hashes_of_every_output_match_the_node(recording, tmp_path) -> None:
    """Not only the recorded ones: /head_poses, /tf and the ROS4HRI per-face topics too."""
    node = NodeProcess("head_pose_node", params=NODE_PARAMS, log_dir=tmp_path)
    probe = Probe("replay_hashes")
    out = tmp_path / "offline"
    try:
        assert subprocess.run(
            [sys.executable, "-m", "dense_head_pose", "bag", str(recording["bag"]),
             "--image-topic", "/image", "--out", str(out), "--deterministic-ids",
             "--models", str(PACK)], capture_output=True, timeout=300).returncode == 0
        got = digests(out)
        wanted = ["/head_poses", "/tf", "/faces"]
        end = time.monotonic() + 20 * TIMEOUT_SCALE
        found: dict[str, str] = {}
        while time.monotonic() < end and len(found) < len(wanted):
            for topic in wanted:
                info = probe.node.get_publishers_info_by_topic(topic)
                if info and hasattr(info[0], "topic_type_hash"):
                    found[topic] = str(info[0].topic_type_hash)
            probe.spin_for(0.2)
        if not found:
            pytest.skip("this distribution announces no type hashes (Humble)")
        assert set(found) == set(wanted) and {t: got[t] for t in found} == found
    finally:
        probe.destroy()
        assert node.stop() == 0


def test_recorded_bag_plays_as_a_camera(recording) -> None:
    """The recording itself is a normal rosbag2 file with the camera topics."""
    topics = read_bag(Path(recording["bag"]))
    assert len(topics["/image"]) == len(topics["/faces"])
