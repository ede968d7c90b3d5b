"""The node under test as a process, and a probe wired to all its inputs and outputs.

Imported by the ROS test modules after ``require_ros()``.
"""

from __future__ import annotations

import itertools
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import NodeProcess, Probe, camera_info_msg, stamp
from sensor_msgs.msg import CompressedImage, Image, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from dense_head_pose.msg import FaceArray

FRAME = "test_camera_optical"
K = (1000.0, 1000.0, 640.0, 360.0)  # not the default f = width: the node must use camera_info
OUTPUTS = {"faces": FaceArray, "head_pose": PoseStamped, "head_poses": PoseArray,
           "face_landmarks": MarkerArray, "face_points": PointCloud2, "face_mesh": Marker,
           "mesh_image": Image, "/diagnostics": DiagnosticArray}
STAMPS = itertools.count(1000)


def next_stamp():
    return stamp(next(STAMPS), 123_000)


def same_stamp(a, b) -> bool:
    return a.sec == b.sec and a.nanosec == b.nanosec


class Rig:
    """The node, a probe subscribed to every output, and image/camera_info publishers."""

    def __init__(self, params: dict, tmp_path, compressed: bool = False, tf: bool = True,
                 namespace: str = "", env: dict | None = None, prime_camera_info: bool = True):
        remaps = {"__ns": f"/{namespace}"} if namespace else None
        self.node = NodeProcess("head_pose_node", params=params, remaps=remaps,
                                log_dir=tmp_path, env=env)
        self.probe = Probe(f"probe_{time.time_ns()}")
        ns = f"/{namespace}/" if namespace else ""
        for topic, msg_type in OUTPUTS.items():
            self.probe.subscribe(msg_type, topic if topic.startswith("/") else ns + topic)
        self.ns = ns
        if tf:
            from tf2_msgs.msg import TFMessage

            from dense_head_pose.ros.tf_output import TF_QOS

            self.probe.subscribe(TFMessage, "/tf", TF_QOS)
        self.pub_image = (self.probe.publisher(CompressedImage, ns + "image/compressed")
                          if compressed else self.probe.publisher(Image, ns + "image"))
        self.pub_info = self.probe.publisher(type(camera_info_msg(1, 1, 0, 0, 1, 1, "", stamp(0))),
                                             ns + "camera_info")
        self.probe.wait_for_subscribers(self.pub_image)
        self.probe.wait_for_subscribers(self.pub_info)
        if prime_camera_info:
            # our writer matching the node's reader does not mean its reader has matched our
            # writer yet, and a best-effort reader drops what comes before: like a camera
            # driver, send CameraInfo for a while, so that the first frame does not fall back
            # to the default intrinsics (its own CameraInfo, same stamp, is still preferred)
            for _ in range(6):
                self.pub_info.publish(camera_info_msg(*K, 1280, 720, FRAME, stamp(0)))
                self.probe.spin_for(0.05)
        self.probe.wait_for_publishers([ns + "faces"])

    def send(self, msg, with_info: bool = True, timeout: float = 20.0,
             required: bool = True) -> FaceArray | None:
        """Publish one frame (and its camera_info); return the FaceArray with its stamp
        (None after ``timeout`` if not ``required``: a caller that retries until the node's
        writers have matched our readers)."""
        t = msg.header.stamp
        if with_info:
            info = camera_info_msg(*K, 1280, 720, FRAME, t)
            self.pub_info.publish(info)
            self.probe.spin_for(0.05)
        self.pub_image.publish(msg)
        found = self.probe.spin_until(lambda: self.result(t) is not None, timeout)
        if not found and not required:
            return None
        assert found, f"no FaceArray for stamp {t.sec}; node output:\n{self.node.output()[-3000:]}"
        return self.result(t)

    def wait(self, t, topic: str, timeout: float = 10.0):
        """The message of ``topic`` with stamp ``t``, waiting for it (None on timeout)."""
        self.probe.spin_until(lambda: self.result(t, topic) is not None, timeout)
        return self.result(t, topic)

    def result(self, t, topic: str = "faces"):
        topic = topic if topic.startswith("/") else self.ns + topic
        for m in self.probe.received[topic]:
            header = m.markers[-1].header if isinstance(m, MarkerArray) and m.markers else \
                getattr(m, "header", None)
            if header is not None and same_stamp(header.stamp, t):
                return m
        return None

    def close(self) -> None:
        self.probe.destroy()
        code = self.node.stop()
        out = self.node.output()
        assert "Traceback" not in out, out[-3000:]
        assert code == 0, f"exit status {code}:\n{out[-3000:]}"



def set_parameters(probe: Probe, values: dict, node: str = "head_pose_node"):
    client = probe.node.create_client(SetParameters, f"/{node}/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    params = []
    for name, value in values.items():
        pv = {bool: ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value),
              int: ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value),
              float: ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value),
              str: ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value),
              }[type(value)]
        params.append(Parameter(name=name, value=pv))
    future = client.call_async(SetParameters.Request(parameters=params))
    assert probe.spin_until(future.done, 10)
    probe.node.destroy_client(client)
    return future.result().results
