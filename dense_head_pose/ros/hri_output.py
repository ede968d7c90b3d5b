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
import random
import string
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from hri_msgs.msg import (
    FacialLandmarks,
    IdsList,
    NormalizedPointOfInterest2D,
    NormalizedRegionOfInterest2D,
)
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ..results import Face
from . import conversions

NAMESPACE = "/humans/faces"
RIGHT_EYE = slice(36, 42)  # the subject's right eye (iBUG 300-W = FacialLandmarks order)
LEFT_EYE = slice(42, 48)


class FaceIds:
    """String ids for the core tracker's integer ids: random letters or ``f00001``.

    A name is kept while its face may come back (the node calls :meth:`forget` when its
    topics are retired); the last ``remember`` names ever given are never given again.
    Thread-safe: the estimation thread names faces, the executor forgets them."""

    def __init__(self, deterministic: bool = False, seed: int | None = None,
                 prefix: str = "", remember: int = 100_000) -> None:
        self.deterministic = deterministic
        self.prefix = prefix
        self._rng = random.Random(seed)
        self._names: dict[int, str] = {}
        self._keys: dict[str, int] = {}
        self._used: set[str] = set()
        self._order: deque[str] = deque()
        self._remember = remember
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, track_id: int | None) -> str:
        """The string id of a tracked face (stable for the same ``track_id``)."""
        key = int(track_id or 0)
        with self._lock:
            name = self._names.get(key)
            if name is None:
                name = self._new_name()
                self._names[key], self._keys[name] = name, key
            return name

    def _new_name(self) -> str:
        name = None
        while name is None or name in self._used:
            if self.deterministic:
                self._count += 1
                name = f"{self.prefix}f{self._count:05d}"
            else:
                name = self.prefix + "".join(self._rng.choices(string.ascii_lowercase, k=5))
        self._used.add(name)
        self._order.append(name)
        while len(self._order) > self._remember:
            self._used.discard(self._order.popleft())
        return name

    def forget(self, name: str) -> None:
        """The face ``name`` is gone for good: drop its entry (the name is not reused)."""
        with self._lock:
            key = self._keys.pop(name, None)
            if key is not None:
                self._names.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)


def normalised_roi(box: np.ndarray, width: int, height: int) -> tuple[float, ...]:
    """(xmin, ymin, xmax, ymax) of a pixel box, normalised by the image size, in [0, 1]."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


def pupils(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) pixel positions of the right and left pupil (see module)."""
    return np.stack([landmarks[RIGHT_EYE, :2].mean(axis=0), landmarks[LEFT_EYE, :2].mean(axis=0)])


def facial_landmarks(face: Face, header: Header, width: int, height: int) -> Any:
    """The 70-point FacialLandmarks message of a face."""
    points = np.concatenate([face.landmarks[:, :2], pupils(face.landmarks)])
    inside = ((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
              & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))
    confidence = np.where(inside, float(face.score), 0.0)
    confidence[68:] *= 0.5
    xs = np.clip(points[:, 0] / width, 0.0, 1.0)
    ys = np.clip(points[:, 1] / height, 0.0, 1.0)
    msg = FacialLandmarks(header=header, height=height, width=width)
    msg.landmarks = [NormalizedPointOfInterest2D(x=float(x), y=float(y), c=float(c))
                     for x, y, c in zip(xs, ys, confidence)]
    return msg


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
                 linger: float = 1.0, max_faces: int = 256, create_timeout: float = 1.0
                 ) -> None:
        self._node = node
        self.ids = ids
        self.face_size = face_size
        self.linger = linger
        self.max_faces = max_faces
        self._create_timeout = create_timeout
        self._tracked = node.create_publisher(IdsList, f"{NAMESPACE}/tracked", 1)
        self._faces: dict[str, _FacePublishers] = {}
        self._wanted: set[str] = set()
        self._previous: list[str] = []
        self._stamp = 0.0  # of the latest frame
        self._closed = False
        self._changed = threading.Condition()
        self.created = 0
        """Per-face publisher sets created so far (one per new face; churn shows here)."""
        self._wake = node.create_guard_condition(self._on_executor)
        self._timer = node.create_timer(0.1, self._on_executor)

    @property
    def live(self) -> int:
        """Per-face publisher sets that exist now (tracked and lingering faces)."""
        with self._changed:
            return len(self._faces)

    # ------------------------------------------------------------------ estimation thread
    def publish(self, faces: Sequence[Face], header: Header, image: np.ndarray | None) -> None:
        """The frame's tracked ids and each face's topics. ``image`` None (an unusable
        frame): an empty list."""
        names = [self.ids(face.id) for face in faces] if image is not None else []
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        with self._changed:
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
            self._tracked.publish(IdsList(header=header, ids=names))
            if image is None:
                return
            height, width = image.shape[:2]
            for name, face in zip(names, faces):
                pubs = self._faces.get(name)
                if pubs is None:  # not created in time (the executor is stopping)
                    continue
                self._publish_face(pubs, face, header, image, width, height)

    def _publish_face(self, pubs: _FacePublishers, face: Face, header: Header,
                      image: np.ndarray, width: int, height: int) -> None:
        xmin, ymin, xmax, ymax = normalised_roi(face.box, width, height)
        pubs.roi.publish(NormalizedRegionOfInterest2D(
            header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, c=float(face.score)))
        pubs.landmarks.publish(facial_landmarks(face, header, width, height))
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

    def close(self) -> None:
        """Retire every face (the node is going away; the executor no longer spins)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            for pubs in self._faces.values():
                pubs.destroy(self._node)
            self._faces.clear()
