"""The node's camera input: the image subscription (raw or compressed, its QoS matched to
the publishers'), the CameraInfo beside it, and the intrinsics of each image.

``image_qos: auto`` subscribes reliably when every publisher of the image topic is reliable
(large frames then cross DDS without loss), else best effort (which matches every
publisher); it is looked at again every few seconds, as publishers come and go: a reliable
subscription would not hear a best-effort publisher at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ..interfaces.camera_info import CameraInfoCache
from ..pipeline.pose import CameraIntrinsics

#: How long a first image waits for its CameraInfo (see camera_info.py; once, and only if
#: someone publishes one).
FIRST_CAMERA_INFO_WAIT_S = 0.5
#: image_qos auto: how often the publishers' QoS is looked at.
QOS_CHECK_S = 2.0


class CameraInput:
    """Subscriptions of one camera (created at activation, destroyed at deactivation)."""

    def __init__(self, node: Any, transport: str, qos: str, on_image: Callable[[Any], None],
                 problems: Any) -> None:
        self._node, self._transport, self._qos = node, transport, qos
        self._on_image, self._problems = on_image, problems
        self.infos = CameraInfoCache()
        self.intrinsics_given = False
        """Whether a CameraInfo has been matched to an image (else the pose is metric only
        up to the guessed focal length)."""
        self._warned = False
        self._image: Any = None
        self._info: Any = None
        self._timer: Any = None
        self._reliable = qos == "reliable"

    def subscribe(self) -> None:
        self._image = self._subscribe_image(self._qos == "reliable")
        self._info = self._node.create_subscription(CameraInfo, "camera_info", self.infos.add,
                                                    qos_profile_sensor_data)
        if self._qos == "auto":
            self.match_qos()
            self._timer = self._node.create_timer(QOS_CHECK_S, self.match_qos)

    def unsubscribe(self) -> None:
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
        for sub in (self._image, self._info):
            if sub is not None:
                self._node.destroy_subscription(sub)
        self._image = self._info = None
        self._reliable = self._qos == "reliable"

    def _subscribe_image(self, reliable: bool) -> Any:
        """The image subscription: reliable (a few frames deep) or best effort."""
        qos = (QoSProfile(depth=3, reliability=ReliabilityPolicy.RELIABLE) if reliable
               else qos_profile_sensor_data)
        if self._transport == "compressed":
            return self._node.create_subscription(CompressedImage, "image/compressed",
                                                  self._on_image, qos)
        return self._node.create_subscription(Image, "image", self._on_image, qos)

    def match_qos(self) -> None:
        """``image_qos: auto``: re-subscribe when the publishers' reliability changed."""
        sub = self._image
        if sub is None:
            return
        topic = sub.topic_name
        infos = self._node.get_publishers_info_by_topic(topic)
        want = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                                   for i in infos)
        if want == self._reliable:
            return
        self._node.destroy_subscription(sub)
        self._image = self._subscribe_image(want)
        self._reliable = want
        self._node.get_logger().info(f"image_qos auto: {len(infos)} publisher(s) of {topic}, "
                                     f"subscribed {'reliable' if want else 'best effort'}")

    def intrinsics(self, header: Header, width: int, height: int) -> CameraIntrinsics:
        """The intrinsics of the CameraInfo that belongs to this image (see camera_info.py),
        else default ones (f = width, centred), said once."""
        sub = self._info
        if self.infos.empty and sub is not None and self._node.count_publishers(
                sub.topic_name):
            self.infos.wait_for_first(FIRST_CAMERA_INFO_WAIT_S)
        if self.infos.empty:
            if not self._warned:
                self._warned = True
                self._node.get_logger().warning(
                    "no camera_info yet: metric poses use default intrinsics (f = image "
                    "width, centred): the translation is a guess until one arrives")
            return CameraIntrinsics.default(width, height)
        intrinsics, problem = self.infos.match(header.frame_id, header.stamp, width, height)
        if problem:
            self._problems.warning("camera_info", problem if intrinsics else
                                   f"{problem}; using default intrinsics (f = image width)")
        self.intrinsics_given = intrinsics is not None
        return intrinsics or CameraIntrinsics.default(width, height)
