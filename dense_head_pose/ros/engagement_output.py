"""Attention and engagement, as ros4hri's ``hri_engagement`` publishes them, from the node's
own faces (the core: :mod:`dense_head_pose.attention`).

* ``/humans/interactions/gazing`` (hri_msgs/Gaze), every processed frame: one message per
  gaze, ``sender`` the face's person, ``receiver`` empty for the robot or another face's
  person (:func:`~dense_head_pose.attention.gazing.gazes`);
* ``/humans/persons/<id>/engagement_status`` (hri_msgs/EngagementLevel) at ``rate``, for
  every person present: the persons of ``/humans/persons/tracked`` with their
  ``/humans/persons/<id>/face_id`` when a person manager publishes them, else the anonymous
  person ``hri_person_manager`` would make of each of this node's faces (same name, so
  starting one later changes nothing downstream). A person gone gets UNKNOWN once, then
  their publisher is retired.

Mutual gaze is measured in ``reference_frame`` when TF (tf2_ros) can place the camera in
it, else in the camera frame turned to +x forward (said once). Publishers and the
engagement clock live on the executor's thread (a timer); the estimation thread only hands
over each frame's gaze frames. Imported only when ``hri_msgs`` is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from hri_msgs.msg import EngagementLevel, Gaze, IdsList
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, String

from ..attention.engagement import UNKNOWN, EngagementOptions
from ..attention.gazing import ROBOT, gaze_poses, gazes
from ..attention.people import Engagement, GazePose
from ..attention.person_ids import anonymous_person_id
from ..interfaces import messages
from ..interfaces.tf_tree import quaternion_matrix
from ..pipeline.results import Face
from .conversions import rclpy_types

PERSONS = "/humans/persons"
#: A frame older than this (seconds of wall time) no longer counts as the people present.
STALE_S = 1.0
#: hri_person_manager latches each person's face id.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class EngagementOutput:
    """Gazing per frame, engagement per person at the options' rate (see module)."""

    def __init__(self, node: Any, options: EngagementOptions) -> None:
        self._node = node
        self.options = options
        self.engagement = Engagement(options)
        self._gazing = node.create_publisher(Gaze, "/humans/interactions/gazing", 10)
        self._persons: list[str] | None = None
        self._face_of: dict[str, str] = {}
        self._face_subs: dict[str, Any] = {}
        self._status: dict[str, Any] = {}
        self._persons_sub = node.create_subscription(
            IdsList, f"{PERSONS}/tracked", self._on_persons, 1)
        self._latest: tuple[float, dict[str, GazePose], Header] | None = None
        self._lock = threading.Lock()
        self._tf = _tf_buffer(node) if options.reference_frame else None
        self._warned = False
        self._timer = node.create_timer(1.0 / options.rate, self._tick)
        self._timer.cancel()  # ticks while the node is active (resume)

    # --------------------------------------------------------------- estimation thread
    def on_frame(self, faces: Sequence[Face], names: Sequence[str], header: Header) -> None:
        """A processed frame: its gazes now, its gaze frames for the next ticks."""
        poses = gaze_poses(faces, names, self._camera_in_reference(header))
        with self._lock:
            self._latest = (time.monotonic(), poses, header)
        for sender, receiver in gazes(poses, self.options):
            self._gazing.publish(messages.gaze(
                rclpy_types, header, self._person_of(sender),
                self._person_of(receiver) if receiver != ROBOT else ROBOT))

    def _camera_in_reference(self, header: Header) -> GazePose | None:
        """The camera frame's pose in ``reference_frame`` (TF), None: the camera's own."""
        if self._tf is None:
            return None
        try:
            t = self._tf.lookup_transform(self.options.reference_frame, header.frame_id,
                                          header.stamp).transform
        except Exception as exc:  # tf2's exceptions: no transform (yet), extrapolation
            if not self._warned:
                self._warned = True
                self._node.get_logger().warning(
                    f"engagement: no TF from {header.frame_id} to "
                    f"{self.options.reference_frame} ({type(exc).__name__}): measuring in "
                    "the camera frame until there is")
            return None
        q, v = t.rotation, t.translation
        return quaternion_matrix(q.x, q.y, q.z, q.w), np.array([v.x, v.y, v.z])

    def _person_of(self, face: str) -> str:
        """The person of a face (its anonymous person when no person manager runs)."""
        if self._persons is None:
            return anonymous_person_id(face)
        for person, their_face in list(self._face_of.items()):
            if their_face == face:
                return person
        return anonymous_person_id(face)

    # ----------------------------------------------------------------- executor thread
    def _on_persons(self, msg: IdsList) -> None:
        """A person manager's persons: follow each one's face id."""
        self._persons = list(msg.ids)
        for person in self._persons:
            if person not in self._face_subs:
                self._face_subs[person] = self._node.create_subscription(
                    String, f"{PERSONS}/{person}/face_id",
                    lambda m, p=person: self._face_of.__setitem__(p, m.data), LATCHED)
        for person in [p for p in self._face_subs if p not in self._persons]:
            self._node.destroy_subscription(self._face_subs.pop(person))
            self._face_of.pop(person, None)

    def _tick(self) -> None:
        with self._lock:
            latest = self._latest
        poses: dict[str, GazePose] = {}
        if latest is not None and time.monotonic() - latest[0] <= STALE_S:
            poses = latest[1]
        if self._persons is None or not self._node.count_publishers(f"{PERSONS}/tracked"):
            present = {anonymous_person_id(face): face for face in poses}
        else:
            present = {p: self._face_of.get(p, "") for p in self._persons}
        levels = self.engagement.tick({p: poses.get(face) for p, face in present.items()})
        header = Header(stamp=self._node.get_clock().now().to_msg())
        for person, level in levels.items():
            publisher = self._status.get(person)
            if publisher is None:
                publisher = self._status[person] = self._node.create_publisher(
                    EngagementLevel, f"{PERSONS}/{person}/engagement_status", 10)
            publisher.publish(messages.engagement_level(rclpy_types, header, level))
            if person not in present:
                self._node.destroy_publisher(self._status.pop(person))

    def resume(self) -> None:
        """Start ticking (the node is activated)."""
        self._timer.reset()

    def pause(self) -> None:
        """Stop ticking, say UNKNOWN to everyone and forget them (the node is deactivated:
        an inactive node wakes for nothing, and its tracks start again). Executor thread."""
        self._timer.cancel()
        with self._lock:
            self._latest = None
        header = Header(stamp=self._node.get_clock().now().to_msg())
        for publisher in self._status.values():
            publisher.publish(messages.engagement_level(rclpy_types, header, UNKNOWN))
            self._node.destroy_publisher(publisher)
        self._status.clear()
        self.engagement = Engagement(self.options)

    def destroy(self) -> None:
        """Stop ticking and destroy every publisher and subscription (executor thread)."""
        self._node.destroy_timer(self._timer)
        for publisher in [self._gazing, *self._status.values()]:
            self._node.destroy_publisher(publisher)
        for sub in [self._persons_sub, *self._face_subs.values()]:
            self._node.destroy_subscription(sub)
        self._status.clear()
        self._face_subs.clear()


def _tf_buffer(node: Any) -> Any:
    """A TF buffer and listener (None without tf2_ros: said once)."""
    try:
        import tf2_ros
    except ImportError:
        node.get_logger().warning("engagement.reference_frame is set but tf2_ros is not "
                                  "installed: measuring in the camera frame")
        return None
    buffer = tf2_ros.Buffer()
    buffer.listener = tf2_ros.TransformListener(buffer, node)
    return buffer
