"""Every output of the node is recordable: real node output into rosbag2 files and back.

``ros2 bag`` is not installable here; ``rosbags`` writes and reads the same rosbag2 format
(sqlite3 and mcap storage). The node's messages are taken serialized off the wire, exactly
what ``ros2 bag record`` stores, with the package's own message definitions registered from
msg/.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from ros_harness import NodeProcess, Probe, camera_info_msg, image_msg, require_ros, stamp

pytestmark = pytest.mark.ros
require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseArray, PoseStamped  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from dense_head_pose.msg import FaceArray  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOPICS = {
    "/faces": (FaceArray, "dense_head_pose/msg/FaceArray"),
    "/head_pose": (PoseStamped, "geometry_msgs/msg/PoseStamped"),
    "/head_poses": (PoseArray, "geometry_msgs/msg/PoseArray"),
    "/face_landmarks": (MarkerArray, "visualization_msgs/msg/MarkerArray"),
    "/face_points": (PointCloud2, "sensor_msgs/msg/PointCloud2"),
    "/face_mesh": (Marker, "visualization_msgs/msg/Marker"),
    "/mesh_image": (Image, "sensor_msgs/msg/Image"),
    "/diagnostics": (DiagnosticArray, "diagnostic_msgs/msg/DiagnosticArray"),
    "/tf": (TFMessage, "tf2_msgs/msg/TFMessage"),
}


def typestore_with_package_msgs():
    """rosbags' type store of the distribution under test, plus this package's messages."""
    distro = os.environ.get("ROS_DISTRO", "kilted")
    store = get_typestore({"jazzy": Stores.ROS2_JAZZY, "humble": Stores.ROS2_HUMBLE}.get(
        distro, Stores.ROS2_KILTED))
    types = {}
    for name in ("Face", "FaceArray"):
        text = (REPO / "msg" / f"{name}.msg").read_text()
        types.update(get_types_from_msg(text, f"dense_head_pose/msg/{name}"))
    store.register(types)
    return store


@pytest.fixture(scope="module")
def recorded(rclpy_context, video_frames, tmp_path_factory):
    """Serialized messages of every output topic, taken off the wire from the real node."""
    node = NodeProcess("head_pose_node", params={"image_qos": "reliable"},
                       log_dir=tmp_path_factory.mktemp("bagnode"))
    probe = Probe("bag_probe")
    try:
        for topic, (msg_type, _) in TOPICS.items():
            probe.subscribe(msg_type, topic, raw=True)
        pub = probe.publisher(Image, "image")
        info_pub = probe.publisher(type(camera_info_msg(1, 1, 0, 0, 1, 1, "", stamp(0))),
                                   "camera_info")
        probe.wait_for_subscribers(pub)
        probe.wait_for_subscribers(info_pub)
        probe.wait_for_publishers(TOPICS)
        for i, index in enumerate((0, 27, 50)):
            t = stamp(5000 + i)
            info_pub.publish(camera_info_msg(1000, 1000, 640, 360, 1280, 720, "cam", t))
            probe.spin_for(0.05)
            pub.publish(image_msg(video_frames[index], "cam", t))
            assert probe.spin_until(lambda n=i: len(probe.received["/faces"]) > n, 20)
        assert probe.spin_until(lambda: all(probe.received[t] for t in TOPICS), 10), \
            {t: len(probe.received[t]) for t in TOPICS}
        # the type hashes the node's publishers announce on the graph (RIHS01, Iron and
        # later), which a bag must carry for its topics
        info = {t: probe.node.get_publishers_info_by_topic(t)[0] for t in TOPICS}
        hashes = {t: str(i.topic_type_hash) for t, i in info.items()
                  if hasattr(i, "topic_type_hash")}  # Iron and later
        yield {"messages": {t: list(probe.received[t]) for t in TOPICS}, "hashes": hashes}
    finally:
        probe.destroy()
        assert node.stop() == 0


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_node_output_round_trips_through_rosbag2(recorded, tmp_path, storage) -> None:
    store = typestore_with_package_msgs()
    hashes, recorded = recorded["hashes"], recorded["messages"]
    bag = tmp_path / f"bag_{storage.name.lower()}"
    with Writer(bag, version=9, storage_plugin=storage) as writer:
        for topic, (_, type_name) in TOPICS.items():
            connection = writer.add_connection(topic, type_name, typestore=store)
            for i, raw in enumerate(recorded[topic]):
                writer.write(connection, 1_000_000_000 + i, bytes(raw))
    suffix = ".db3" if storage == StoragePlugin.SQLITE3 else ".mcap"
    assert list(bag.glob(f"*{suffix}")) and (bag / "metadata.yaml").is_file()
    # the bag's type hashes are the ones the live node's publishers announce
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    in_bag = {t["topic_metadata"]["name"]: t["topic_metadata"]["type_description_hash"]
              for t in metadata["topics_with_message_count"]}
    if hashes:  # (Humble announces none)
        assert in_bag == hashes

    read: dict[str, list[bytes]] = {t: [] for t in TOPICS}
    with Reader(bag) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == \
            {t: n for t, (_, n) in TOPICS.items()}
        for connection, _, raw in reader.messages():
            read[connection.topic].append(bytes(raw))
    for topic, (msg_type, type_name) in TOPICS.items():
        assert read[topic] == [bytes(r) for r in recorded[topic]], topic
        for raw in read[topic]:
            # the bag's bytes decode both ways: rosbags' own types and rclpy's
            ours = deserialize_message(raw, msg_type)
            theirs = store.deserialize_cdr(raw, type_name)
            _compare(topic, ours, theirs)


def _compare(topic: str, ours, theirs) -> None:
    if topic == "/faces":
        assert len(ours.faces) == len(theirs.faces) == 1
        a, b = ours.faces[0], theirs.faces[0]
        assert a.id == b.id and a.score == pytest.approx(b.score)
        assert np.array_equal(np.asarray(a.landmarks_image), b.landmarks_image)
        assert np.array_equal(np.asarray(a.shape_coefficients), b.shape_coefficients)
        assert a.head_pose.position.z == b.head_pose.position.z
        assert ours.header.frame_id == theirs.header.frame_id == "cam"
    elif topic == "/head_pose":
        assert ours.pose.orientation.w == theirs.pose.orientation.w
        assert ours.header.stamp.sec == theirs.header.stamp.sec
    elif topic == "/face_points":
        assert ours.width == theirs.width == 38365
        assert bytes(ours.data) == theirs.data.tobytes()
    elif topic == "/mesh_image":
        assert (ours.width, ours.height, ours.encoding) == (theirs.width, theirs.height,
                                                             theirs.encoding)
        assert bytes(ours.data) == theirs.data.tobytes()
    elif topic == "/face_mesh":
        assert len(ours.points) == len(theirs.points) > 0
    elif topic == "/face_landmarks":
        assert [len(m.points) for m in ours.markers] == [len(m.points) for m in theirs.markers]
    elif topic == "/diagnostics":
        assert [s.name for s in ours.status] == [s.name for s in theirs.status]
    elif topic == "/tf":
        assert [t.child_frame_id for t in ours.transforms] == \
            [t.child_frame_id for t in theirs.transforms]
    elif topic == "/head_poses":
        assert len(ours.poses) == len(theirs.poses)
