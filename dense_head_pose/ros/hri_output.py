"""ROS4HRI (REP-155) face outputs, as ros4hri's ``hri_face_detect`` publishes them.

* ``/humans/faces/tracked`` (hri_msgs/IdsList): the ids of the faces of every processed
  frame (an empty list when there is none, or the frame was unusable);
* per face, under ``/humans/faces/<id>/``, created when the face is first tracked and
  destroyed once it is lost for good (see :class:`HriOutput`): ``roi``
  (NormalizedRegionOfInterest2D), ``landmarks`` (FacialLandmarks), and, only when someone
  subscribes, ``cropped`` and ``aligned`` (sensor_msgs/Image, bgr8, ``width`` x ``height``);
* the TF frames ``face_<id>`` and ``gaze_<id>`` carry the same ids (:class:`FaceIds` names
  them for the node's TF output).

Ids are strings: 5 random lowercase letters by default, ``f00001``-style with
``deterministic``, like hri_face_detect. A tracked face (``Face.id`` of the core tracker)
keeps its string id while tracked, and when it is lost and found again near where it was
within ``forget_after`` seconds (the tracker gives it its old track id back).

Coordinates are normalised to [0, 1] by the image size and clipped. Confidence ``c``: the
ROI and the 68 landmarks carry the face's detector confidence; a landmark outside the image
carries 0. The two pupils (indices 68 and 69) are placed at the centre of their eye's six
contour landmarks: the 3D model has no iris, so this is where the pupil is when the eyes look
along the head's direction; they carry half the face's confidence to say so.

Everything here is imported only when ``hri_msgs`` is (the node checks), so the node runs
without it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from hri_msgs.msg import (
    FacialLandmarks,
    IdsList,
    NormalizedRegionOfInterest2D,
)
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ..interfaces.face_ids import FaceIds
from ..interfaces.frame_messages import ROI, FrameOptions, hri_messages
from ..interfaces.messages import pupils
from ..pipeline.results import Face
from . import conversions
from .conversions import rclpy_types

NAMESPACE = "/humans/faces"
__all__ = ["NAMESPACE", "FaceIds", "HriOutput", "crop_face"]


def crop_face(image: np.ndarray, box: np.ndarray, size: tuple[int, int],
              level_eyes: np.ndarray | None = None) -> np.ndarray:
    """The face box scaled to fit ``size`` (width, height), centred, black margins; rotated
    about the box centre so the line through ``level_eyes`` (right, left pupil) is level.

    One ``warpAffine`` from the full image, so parts of the box outside the image are black,
    and rotation never shows the image's edge inside the face."""
    out_w, out_h = size
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    centre = ((x1 + x2) / 2.0, (y1 + y2) / 2.0)
    scale = min(out_w / max(x2 - x1, 1.0), out_h / max(y2 - y1, 1.0))
    angle = 0.0
    if level_eyes is not None:
        # in the image the subject's right eye is on the left: the eye line points right
        dx, dy = level_eyes[1] - level_eyes[0]
        angle = math.degrees(math.atan2(dy, dx))
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[0, 2] += out_w / 2.0 - centre[0]
    matrix[1, 2] += out_h / 2.0 - centre[1]
    return cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class _FacePublishers:
    def __init__(self, node: Node, name: str) -> None:
        ns = f"{NAMESPACE}/{name}"
        self.roi = node.create_publisher(NormalizedRegionOfInterest2D, f"{ns}/roi", 1)
        self.landmarks = node.create_publisher(FacialLandmarks, f"{ns}/landmarks", 1)
        self.cropped = node.create_publisher(Image, f"{ns}/cropped", 1)
        self.aligned = node.create_publisher(Image, f"{ns}/aligned", 1)
        self.last_seen: float | None = None
        """Stamp (s) of the last frame the face was tracked in."""

    def destroy(self, node: Node) -> None:
        for publisher in (self.roi, self.landmarks, self.cropped, self.aligned):
            node.destroy_publisher(publisher)


class HriOutput:
    """Publishes the ROS4HRI face interface of each processed frame (see module).

    **Threads.** :meth:`publish` runs on the node's estimation thread, but the per-face
    publishers are created and destroyed only on the executor's thread: rclpy's executor
    builds its wait set from the node's entities (a publisher brings QoS event handlers), and
    a publisher destroyed by another thread meanwhile made it raise ``InvalidHandle`` and
    killed the node. So :meth:`publish` asks for the publishers of new faces (a guard
    condition wakes the executor, which creates them and says so) and waits for them, at most
    ``create_timeout`` s; faces gone are retired by a timer on the executor.

    **Lingering topics.** A face missing from a frame keeps its topics for ``linger`` s of
    the frames' time (the tracker's ``forget_after``: as long as it can come back with the
    same id), quiet and absent from ``/humans/faces/tracked``; only then are they
    destroyed. People occluded for a frame no longer cost four publishers destroyed and
    created again, nor subscribers a re-subscription. At most ``max_faces`` sets live;
    beyond, the longest gone are retired.
    """

    def __init__(self, node: Node, ids: FaceIds, face_size: tuple[int, int] = (128, 128),
                 linger: float = 1.0, max_faces: int = 256, create_timeout: float = 1.0,
                 tracked_topic: str = f"{NAMESPACE}/tracked") -> None:
        self._node = node
        self.ids = ids
        self.face_size = face_size
        self.linger = linger
        self.max_faces = max_faces
        self._create_timeout = create_timeout
        self._tracked = node.create_publisher(IdsList, tracked_topic, 1)
        self._frame_options = FrameOptions(hri=True, tracked_topic=tracked_topic)
        self._faces: dict[str, _FacePublishers] = {}
        self._wanted: set[str] = set()
        self._previous: list[str] = []
        self._stamp = 0.0  # of the latest frame
        self._closed = False
        self._destroyed = False
        self._changed = threading.Condition()
        self.created = 0
        """Per-face publisher sets created so far (one per new face; churn shows here)."""
        self._wake = node.create_guard_condition(self._on_executor)
        self._timer = node.create_timer(0.1, self._on_executor)
        self._timer.cancel()  # runs while the node is active (resume)

    @property
    def live(self) -> int:
        """Per-face publisher sets that exist now (tracked and lingering faces)."""
        with self._changed:
            return len(self._faces)

    # ------------------------------------------------------------------ estimation thread
    def publish(self, faces: Sequence[Face], names: Sequence[str], header: Header,
                image: np.ndarray | None) -> None:
        """The frame's ROS4HRI messages (``hri_messages``: the tracked ids, each face's roi
        and landmarks) and, when subscribed, each face's crops; ``names`` are the faces'
        ids (:attr:`ids`). ``image`` None (an unusable frame): an empty list."""
        size = None if image is None else (image.shape[1], image.shape[0])
        names = list(names) if image is not None else []
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        with self._changed:
            if self._closed:
                return
            self._previous = names
            self._stamp = stamp
            missing = [n for n in names if n not in self._faces]
            if missing and not self._closed:
                self._wanted.update(missing)
                self._wake.trigger()
                self._changed.wait_for(
                    lambda: self._closed or all(n in self._faces for n in missing),
                    self._create_timeout)
            for name in names:
                if name in self._faces:
                    self._faces[name].last_seen = stamp
            # published under the lock: the executor cannot retire these meanwhile
            for message in hri_messages(rclpy_types, header, size, faces, names,
                                        self._frame_options):
                if message.face is None:
                    self._tracked.publish(message.message)
                elif message.face in self._faces:  # else: not created in time (stopping)
                    pubs = self._faces[message.face]
                    (pubs.roi if message.msgtype == ROI else pubs.landmarks).publish(
                        message.message)
            if image is None:
                return
            for name, face in zip(names, faces):
                if name in self._faces:
                    self._publish_crops(self._faces[name], face, header, image)

    def _publish_crops(self, pubs: _FacePublishers, face: Face, header: Header,
                       image: np.ndarray) -> None:
        if pubs.cropped.get_subscription_count():
            pubs.cropped.publish(conversions.bgr_to_image(
                crop_face(image, face.box, self.face_size), header))
        if pubs.aligned.get_subscription_count():
            pubs.aligned.publish(conversions.bgr_to_image(
                crop_face(image, face.box, self.face_size, pupils(face.landmarks)), header))

    # -------------------------------------------------------------------- executor thread
    def _on_executor(self) -> None:
        """Create the publishers asked for; retire faces gone longer than ``linger``."""
        with self._changed:
            if self._closed:
                return
            for name in self._wanted:
                if name not in self._faces:
                    self._faces[name] = _FacePublishers(self._node, name)
                    self.created += 1
                    self._node.get_logger().info(f"new face {name}")
            self._wanted.clear()
            now = self._stamp
            gone = sorted((p.last_seen or now, n) for n, p in self._faces.items()
                          if n not in self._previous)
            excess = len(self._faces) - self.max_faces
            for i, (seen, name) in enumerate(gone):
                # in the frames' time, as the tracker forgets; time going back (a bag
                # looping) restarts the tracker, whose old ids never come back
                if not 0.0 <= now - seen <= self.linger or i < excess:
                    self._faces.pop(name).destroy(self._node)
                    self.ids.forget(name)
                    self._node.get_logger().info(f"face {name} lost")
            self._changed.notify_all()

    def resume(self) -> None:
        """Start retiring lingering faces again (the node is activated)."""
        self._timer.reset()

    def retire_all(self) -> None:
        """Retire every face at once, and stop the retiring timer (the node is deactivated:
        its tracks are reset; an inactive node wakes for nothing). On the executor's
        thread."""
        self._timer.cancel()
        with self._changed:
            for name, pubs in self._faces.items():
                pubs.destroy(self._node)
                self.ids.forget(name)
            self._faces.clear()
            self._wanted.clear()
            self._previous = []

    def stop(self) -> None:
        """Publish nothing more, and free a worker waiting for per-face publishers (first
        step of a shutdown, before the workers are joined)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def close(self) -> None:
        """Retire every face and destroy every publisher (``cleanup``, or the node going
        away; the workers are stopped, or the executor no longer spins)."""
        self.stop()
        with self._changed:
            if self._destroyed:
                return
            self._destroyed = True
            for pubs in self._faces.values():
                pubs.destroy(self._node)
            self._faces.clear()
            self._node.destroy_publisher(self._tracked)
            self._node.destroy_timer(self._timer)
            self._node.destroy_guard_condition(self._wake)


def hri_output(node: Node, p: dict[str, Any]) -> HriOutput | None:
    """The node's ROS4HRI output when ``hri.enable`` and the installed packages allow it."""
    mode = p["hri.enable"]
    if mode == "off":
        return None
    ids = FaceIds(bool(p["hri.deterministic_ids"]), prefix=p["face_id_prefix"])
    return HriOutput(node, ids, (int(p["hri.face_width"]), int(p["hri.face_height"])),
                     linger=float(p["forget_after"]), tracked_topic=p["hri.tracked_topic"])
