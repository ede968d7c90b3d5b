"""ROS 2 node ``image_source``: a video file, an image folder or a camera as a camera driver.

Publishes ``image`` (sensor_msgs/Image, bgr8) and ``camera_info`` with the same header, at the
file's frame rate or a set one, optionally looping. At the end of a file or folder without
``loop`` the node exits (status 0), and with a source that yields no frame at all it exits
with status 1: the demo launch then ends instead of idling. The CameraInfo comes from a calibration
YAML as written by the ROS ``camera_calibration`` package, or, without one, from default
intrinsics (f = image width, centred). The demo launch uses it when no camera driver runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ..errors import DenseHeadPoseError
from ..pipeline.pose import CameraIntrinsics
from ..video.sources import open_source
from . import conversions
from .process import help_text, run_node

#: At the end of the source, how long to wait for reliable subscribers to acknowledge.
_ACK_WAIT_S = 1.0


def load_calibration(path: str) -> CameraInfo:
    """A CameraInfo from a ``camera_calibration`` YAML file (image_width, camera_matrix, ...).

    Raises ``ValueError`` naming the file and the problem.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        info = CameraInfo(width=int(data["image_width"]), height=int(data["image_height"]))
        info.k = [float(v) for v in data["camera_matrix"]["data"]]
        info.distortion_model = str(data.get("distortion_model", "plumb_bob"))
        info.d = [float(v) for v in data.get("distortion_coefficients", {}).get("data", [])]
        if "rectification_matrix" in data:
            info.r = [float(v) for v in data["rectification_matrix"]["data"]]
        else:
            info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        if "projection_matrix" in data:
            info.p = [float(v) for v in data["projection_matrix"]["data"]]
        else:
            k = info.k
            info.p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"calibration file {path}: {exc!r}") from exc
    CameraIntrinsics.from_matrix(info.k)  # validates focal lengths
    return info


#: (name, default, descriptor) of every parameter (``--help`` lists them).
PARAMETERS = (
    # dynamic typing: `-p source:=0` arrives as an integer (a camera index), a path as text
    ("source", "", ParameterDescriptor(
        description="Video file, image folder or camera index (OpenCV).", read_only=True,
        dynamic_typing=True)),
    ("rate", 0.0, ParameterDescriptor(
        description="Frames per second; 0: the video's own rate (folders: 10).",
        floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1000.0)])),
    ("loop", True, ParameterDescriptor(description="Start again at the end of a file or "
                                                   "folder.")),
    ("frame_id", "camera_optical_frame", ParameterDescriptor(
        description="frame_id of the images: the camera optical frame (REP-103).")),
    ("camera_info_file", "", ParameterDescriptor(
        description="camera_calibration YAML; empty: default intrinsics.", read_only=True)),
    ("wait_for_subscriber", False, ParameterDescriptor(
        description="Hold the first frame until something subscribes to 'image', so a short "
                    "clip is not over before the consumer has connected.")),
    ("min_subscribers", 1, ParameterDescriptor(
        description="With wait_for_subscriber: how many subscribers of 'image' to wait for "
                    "(the node and a recorder: 2).",
        integer_range=[IntegerRange(from_value=1, to_value=64, step=1)])),
    ("reliable", True, ParameterDescriptor(
        description="Reliable publisher (no loss on loopback); false: sensor-data QoS.",
        read_only=True)),
)
USAGE = ("image_source: publishes a video file, image folder or camera as a camera driver "
         "would (image, camera_info).")


class ImageSource(Node):
    """Publishes frames of a source on a timer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("image_source", **kwargs)
        for name, default, descriptor in PARAMETERS:
            self.declare_parameter(name, default, descriptor)
        source = str(self.get_parameter("source").value)
        if not source:
            raise DenseHeadPoseError("parameter 'source' is empty: give a video, folder or "
                                     "camera index")
        self.frames = open_source(source)
        self.calibration = None
        calibration_file = str(self.get_parameter("camera_info_file").value)
        if calibration_file:
            self.calibration = load_calibration(calibration_file)
        qos = (QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
               if self.get_parameter("reliable").value else qos_profile_sensor_data)
        self.pub_image = self.create_publisher(Image, "image", qos)
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", qos)
        rate = float(self.get_parameter("rate").value) or self.frames.fps or 10.0
        self._iterator = iter(self.frames)
        self._in_pass = 0
        self.published = 0
        self.exit_status: int | None = None
        """Set when the source is done; the process runner then ends it with it."""
        self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(f"publishing {self.frames.description} at {rate:.1f} Hz")

    def _next_frame(self):
        """The next frame; at the end of a file or folder, the first again (``loop``) or
        None. A pass that yields nothing at all (every file of a folder gone bad since
        start-up) raises: looping would re-read nothing forever."""
        try:
            frame = next(self._iterator)[1]
        except StopIteration:
            if not self.get_parameter("loop").value or not self.frames.rewind():
                return None
            if self._in_pass == 0:
                raise DenseHeadPoseError(f"{self.frames.description} yields no frame") from None
            self._iterator = iter(self.frames)
            self._in_pass = 0
            return self._next_frame()
        self._in_pass += 1
        return frame

    def _tick(self) -> None:
        if self.exit_status is not None:
            return
        if (self.get_parameter("wait_for_subscriber").value
                and self.pub_image.get_subscription_count()
                < self.get_parameter("min_subscribers").value):
            return
        try:
            frame = self._next_frame()
        except DenseHeadPoseError as exc:
            self.get_logger().error(f"{exc}: stopping")
            self.exit_status = 1
            return
        if frame is None:  # the end, not looping: the node's work is done
            self.get_logger().info(f"end of {self.frames.description} after "
                                   f"{self.published} frames")
            # a reliable subscriber may not have every frame yet (a short folder is published
            # in a fraction of a second): ending now would drop what it has not acknowledged
            for publisher in (self.pub_info, self.pub_image):
                publisher.wait_for_all_acked(Duration(seconds=_ACK_WAIT_S))
            self.exit_status = 0
            return
        header = Header(stamp=self.get_clock().now().to_msg(),
                        frame_id=str(self.get_parameter("frame_id").value))
        height, width = frame.shape[:2]
        if self.calibration is not None:
            info = self.calibration
            info.header = header
        else:
            info = conversions.camera_info_from_intrinsics(
                CameraIntrinsics.default(width, height), width, height, header)
        self.pub_info.publish(info)
        self.pub_image.publish(conversions.bgr_to_image(frame, header))
        self.published += 1


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; exit status 1 if the source cannot be opened."""
    return run_node(ImageSource, args, close=lambda node: node.frames.close(),
                    known_errors=(DenseHeadPoseError, ValueError),
                    usage=help_text(USAGE, [(n, d, p.description) for n, d, p in PARAMETERS]))


if __name__ == "__main__":
    sys.exit(main())
