"""``hri_tracked_merger``: one ``/humans/faces/tracked`` for a robot with several cameras.

REP-155 has a single list of the faces currently tracked, ``/humans/faces/tracked``, and its
consumers (libhri, pyhri, hri_person_manager) treat each message as the whole truth: a face
missing from it is gone. Two face nodes publishing there directly would each erase the
other's faces every frame. So with one ``head_pose_node`` per camera, each node publishes its
own list on ``<namespace>/humans/faces/tracked`` (``hri.tracked_topic``) and this node
publishes their union on ``/humans/faces/tracked``. The per-face topics
(``/humans/faces/<id>/...``) and TF frames stay global; ``face_id_prefix`` keeps ids unique.
A person seen by two cameras is two faces, as REP-155 has it: matching faces to one person
is a person manager's job (``/humans/candidate_matches``).

A camera's list counts until it is ``stale_after`` seconds old (by arrival): a node that
stops or dies does not leave its faces tracked for ever. The union is published on every
input list (so its rate is the sum of theirs, its latency none added) and when a list goes
stale. Inputs: the ``inputs`` parameter, or, when it is empty, every ``IdsList`` topic ending
in ``/humans/faces/tracked`` other than the output, looked up every 2 s (cameras added later
are merged too).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from hri_msgs.msg import IdsList
from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

from ..interfaces.tracked_union import STALE_AFTER_RANGE, STALE_AFTER_S, TrackedUnion
from .process import help_text, run_node

TRACKED = "/humans/faces/tracked"
_SCAN_S = 2.0


class TrackedMerger(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("hri_tracked_merger", **kwargs)
        self.declare_parameter("inputs", Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            type=ParameterType.PARAMETER_STRING_ARRAY, read_only=True,
            description="IdsList topics to merge; empty: every */humans/faces/tracked"))
        self.declare_parameter("output", TRACKED, ParameterDescriptor(
            read_only=True, description="where the union goes"))
        self.declare_parameter("stale_after", STALE_AFTER_S, ParameterDescriptor(
            description="seconds after which a camera's list no longer counts"))
        try:
            given = self.get_parameter("inputs").value
        except ParameterUninitializedException:  # `ros2 run` without parameters
            given = []
        inputs = [t for t in (given or []) if t]
        self.output = self.resolve_topic_name(self.get_parameter("output").value)
        self.union = TrackedUnion(self._stale_after(self.get_parameter("stale_after").value)
                                  or STALE_AFTER_S)
        self.add_on_set_parameters_callback(self._on_set)
        self._subs: dict[str, Any] = {}
        self._pub = self.create_publisher(IdsList, self.output, QoSProfile(depth=10))
        self._last_stamp: Any = None
        for topic in inputs:
            self._subscribe(self.resolve_topic_name(topic))
        if not inputs:
            self._scan()
            self.create_timer(_SCAN_S, self._scan)
        self.create_timer(0.1, self._expire)
        self.get_logger().info(
            f"merging {', '.join(self._subs) or 'nothing yet'} into {self.output}"
            + ("" if inputs else f" (and every */humans/faces/tracked, looked up every "
                                 f"{_SCAN_S:.0f} s)"))

    def _stale_after(self, value: Any) -> float | None:
        """``value`` as seconds, or None (with one error line) if it is not in (0, 3600]."""
        low, high = STALE_AFTER_RANGE
        if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                low < value <= high:
            return float(value)
        self.get_logger().error(f"stale_after must be in ({low:g}, {high:g}] s, got "
                                f"{value!r}")
        return None

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "stale_after":
                seconds = self._stale_after(p.value)
                if seconds is None:
                    return SetParametersResult(
                        successful=False, reason=f"stale_after must be in "
                        f"({STALE_AFTER_RANGE[0]:g}, {STALE_AFTER_RANGE[1]:g}] s")
                self.union.stale_after = seconds
        return SetParametersResult(successful=True)

    def _subscribe(self, topic: str) -> None:
        if topic in self._subs or topic == self.output:
            return
        self._subs[topic] = self.create_subscription(
            IdsList, topic, lambda msg, t=topic: self._on_list(t, msg), QoSProfile(depth=10))

    def _scan(self) -> None:
        """Subscribe to the IdsList topics ``*/humans/faces/tracked`` not merged yet."""
        for topic, types in self.get_topic_names_and_types():
            if topic.endswith(TRACKED) and topic != self.output and topic not in self._subs \
                    and "hri_msgs/msg/IdsList" in types:
                self._subscribe(topic)
                self.get_logger().info(f"merging {topic} too")

    def _on_list(self, topic: str, msg: IdsList) -> None:
        self._last_stamp = msg.header.stamp
        self._publish(self.union.update(topic, list(msg.ids), time.monotonic()))

    def _expire(self) -> None:
        now = time.monotonic()
        if self.union.expire(now):
            self._publish(self.union.union(now))

    def _publish(self, ids: list[str]) -> None:
        msg = IdsList(ids=ids)
        if self._last_stamp is not None:
            msg.header.stamp = self._last_stamp  # the newest list's frame time
        self._pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    """Run the merger until shutdown (Ctrl-C or SIGTERM)."""
    return run_node(TrackedMerger, args, usage=help_text(
        "hri_tracked_merger: publishes the union of several cameras' tracked face ids "
        "(ROS4HRI /humans/faces/tracked).",
        [("inputs", [], "IdsList topics to merge; empty: every */humans/faces/tracked"),
         ("output", TRACKED, "where the union goes"),
         ("stale_after", STALE_AFTER_S, "seconds after which a camera's list no longer "
          "counts")]))


if __name__ == "__main__":
    sys.exit(main())
