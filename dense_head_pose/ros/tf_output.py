"""TF output that works with or without tf2_ros.

On a ROS 2 install, :class:`tf2_ros.TransformBroadcaster` publishes the frames. Where
tf2_ros is missing but tf2_msgs exists (this project's test workspace builds that one message
package), the same tf2_msgs/TFMessage is published on ``/tf`` with TF's own QoS, which is all
the broadcaster does. With neither, TF output is off and :attr:`available` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


class TfOutput:
    """Sends TransformStamped lists to /tf."""

    def __init__(self, node: Node) -> None:
        self.backend = "none"
        self._send = None
        self._publisher = None
        try:
            from tf2_ros import TransformBroadcaster

            broadcaster = TransformBroadcaster(node)
            self._send = broadcaster.sendTransform
            self._publisher = broadcaster.pub_tf
            self.backend = "tf2_ros"
            return
        except ImportError:
            pass
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            return
        publisher = node.create_publisher(TFMessage, "/tf", TF_QOS)
        self._send = lambda transforms: publisher.publish(TFMessage(transforms=list(transforms)))
        self._publisher = publisher
        self.backend = "tf2_msgs"

    @property
    def available(self) -> bool:
        """Whether transforms can be sent at all."""
        return self._send is not None

    def send(self, transforms: Sequence[TransformStamped]) -> None:
        """Publish ``transforms`` (no-op when unavailable or empty)."""
        if self._send is not None and transforms:
            self._send(list(transforms))

    def destroy(self, destroy_publisher: Callable[[Any], Any]) -> None:
        """Destroy the /tf publisher (the node's ``destroy_publisher``)."""
        if self._publisher is not None:
            destroy_publisher(self._publisher)
        self._publisher = self._send = None
