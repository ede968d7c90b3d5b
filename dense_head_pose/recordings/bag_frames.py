"""A bag's camera topics as frames (``sensor_msgs/Image`` or ``CompressedImage``, with the
CameraInfo beside each), read as the live node would have received them.

One rule for every problem a recording can have: say it, count it, go on. A message that
does not deserialize, an image that does not decode or has an encoding the node does not
take (a frame with no image: its outputs say so, as live), stamps going back (the tracker
starts again, as live), a cut-off recording (read up to the cut, :mod:`.bag_input`).

Several camera topics in one bag are processed as ``multi_camera.launch.py`` would: camera
topic ``/NAME/image_raw`` gets outputs under ``/NAME/`` and face ids prefixed ``NAME_``
(``/x/front/image`` and ``/y/front/image``: ``x_front_`` and ``y_front_``; prefixes are
unique per camera).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError
from ..interfaces import messages
from ..interfaces.camera_info import CameraInfoCache
from ..interfaces.face_ids import FaceIds
from ..pipeline.pose import CameraIntrinsics
from .bag_input import BagInput
from .bag_types import CAMERA_INFO, COMPRESSED, IMAGE_TYPES, BagError
from .frame_loop import Camera, Frame
from .summary import BagSummary, Window

#: The logger of ``dense-head-pose bag`` (its lines read ``... dense_head_pose.bag: ...``).
LOG = logging.getLogger("dense_head_pose.bag")
_FIRST_CAMERA_INFO_WAIT_NS = 500_000_000  # as the node: a first image may overtake it
#: Images held while waiting for the first CameraInfo: at most this many, and bytes.
MAX_PENDING_FRAMES = 30
MAX_PENDING_BYTES = 256 << 20


@dataclass
class BagCamera(Camera):
    """One camera topic of the bag and everything kept per camera."""

    msgtype: str = ""
    info_topic: str | None = None
    infos: CameraInfoCache = field(default_factory=CameraInfoCache)
    pending: list[tuple[int, Any]] = field(default_factory=list)
    pending_bytes: int = 0
    gave_up_waiting: bool = False
    last_stamp: dict[str, int] = field(default_factory=dict)

    def hold(self, log_ns: int, msg: Any) -> bool:
        """Hold an image until the first CameraInfo comes, as the node waits for it (once,
        for 0.5 s of recording, and at most :data:`MAX_PENDING_FRAMES` images and
        :data:`MAX_PENDING_BYTES`); False once it is time to stop waiting."""
        self.pending.append((log_ns, msg))
        self.pending_bytes += len(getattr(msg, "data", b""))
        return (log_ns - self.pending[0][0] <= _FIRST_CAMERA_INFO_WAIT_NS
                and len(self.pending) < MAX_PENDING_FRAMES
                and self.pending_bytes <= MAX_PENDING_BYTES)

    def release(self) -> list[tuple[int, Any]]:
        """The images held, now to be processed."""
        held, self.pending, self.pending_bytes = self.pending, [], 0
        return held


def camera_prefixes(namespaces: Sequence[str], prefix: str = "") -> list[str]:
    """Face id prefixes of several cameras, one per namespace, all different: ``prefix``
    and the namespace's names joined by ``_`` (``/x/front`` -> ``x_front_``). Face ids
    are a prefix and letters or digits without ``_``, so different prefixes never give two
    cameras one id."""
    out: list[str] = []
    for namespace in namespaces:
        token = re.sub(r"[^A-Za-z0-9_]", "_", namespace.strip("/")) or "camera"
        token = (prefix + token)[:30]
        token = token if token[0].isalpha() else f"c{token}"[:30]
        candidate, n = f"{token}_", 2
        while candidate in out:
            candidate, n = f"{token[:27]}{n}_", n + 1
        out.append(candidate)
    return out


def _chosen_topics(bag: BagInput, image_topics: Sequence[str]) -> list[str]:
    """The camera topics to read; BagError with the fix when a named one is missing or of
    another type."""
    images = {n: t for n, t in bag.topics.items() if t.msgtype in IMAGE_TYPES}
    if not image_topics:
        if not images:
            raise BagError(f"{bag.path}: no image topic (sensor_msgs/msg/Image or "
                           f"CompressedImage); its topics: {', '.join(sorted(bag.topics))}")
        return sorted(images)
    for name in image_topics:
        topic = bag.topics.get(name)
        if topic is None:
            raise BagError(f"{bag.path}: no topic {name}; its image topics: "
                           f"{', '.join(sorted(images)) or 'none'}")
        if topic.msgtype not in IMAGE_TYPES:
            raise BagError(f"{bag.path}: {name} is {topic.msgtype}, not an image topic "
                           f"(sensor_msgs/msg/Image or CompressedImage); image topics: "
                           f"{', '.join(sorted(images)) or 'none'}")
    return list(dict.fromkeys(image_topics))


def cameras_of(bag: BagInput, options: Any, hri_ids: bool) -> list[BagCamera]:
    """The cameras to process (``options``: :class:`~.summary.BagOptions`), each with its
    CameraInfo topic, namespace and face id prefix."""
    chosen = _chosen_topics(bag, options.image_topics)
    if options.camera_info_topic and len(chosen) > 1:
        raise BagError("--camera-info-topic goes with one image topic; with several, each "
                       "one's camera_info beside it is used")
    several = len(chosen) > 1
    parents = []
    for name in chosen:
        base = name[: -len("/compressed")] if bag.topics[name].msgtype == COMPRESSED and \
            name.endswith("/compressed") else name
        parents.append(base.rsplit("/", 1)[0])
    if several and len(set(parents)) < len(parents):
        raise BagError(f"{bag.path}: camera topics {', '.join(chosen)} would publish into the "
                       f"same namespace: pick one with --image-topic")
    prefixes = camera_prefixes(parents, options.face_id_prefix) if several else \
        [options.face_id_prefix]
    cameras = []
    for name, parent, prefix in zip(chosen, parents, prefixes):
        info = options.camera_info_topic or f"{parent}/camera_info"
        info_topic = info if bag.topics.get(info) and \
            bag.topics[info].msgtype == CAMERA_INFO else None
        if options.camera_info_topic and info_topic is None:
            raise BagError(f"{bag.path}: {options.camera_info_topic} is not a CameraInfo "
                           f"topic of this bag")
        ids = FaceIds(options.deterministic_ids, prefix=prefix) if hri_ids else None
        cameras.append(BagCamera(name, parent if several else "", ids, prefix,
                                 msgtype=bag.topics[name].msgtype, info_topic=info_topic))
    return cameras


class BagFrames:
    """The frames of a bag's cameras in recording order (see module), or of one time chunk
    of it (``window``); what was read is counted in ``summary``."""

    def __init__(self, bag: BagInput, cameras: list[BagCamera], summary: BagSummary,
                 default_intrinsics: CameraIntrinsics | None = None,
                 window: Window | None = None) -> None:
        self.bag, self.cameras, self.summary = bag, cameras, summary
        self.default_intrinsics = default_intrinsics
        self.window = window
        self.by_topic = {c.key: c for c in cameras}
        self.by_info = {c.info_topic: c for c in cameras if c.info_topic}
        self.total = sum(bag.topics[c.key].count or 0 for c in cameras) or None
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def __iter__(self) -> Iterator[Frame]:
        first = stop = None
        if self.window is not None:
            first, stop = self.window.start - self.window.warmup, self.window.stop
            self._infos_before(first)
        topics = set(self.by_topic) | set(self.by_info)
        for topic, msgtype, log_ns, data in self.bag.messages(topics, first, stop):
            try:
                msg = self.bag.deserialize(data, msgtype)
            except Exception as exc:  # bytes that are not this type: say, count, go on
                self.summary.undeserializable += 1
                self.say_once("undeserializable", f"{topic}: a message that does not "
                              f"deserialize as {msgtype} ({type(exc).__name__}: {exc})")
                continue
            if topic in self.by_info:
                camera = self.by_info[topic]
                camera.infos.add(msg)
                for held_ns, held in camera.release():  # the images that waited for it
                    yield self._frame(camera, held_ns, held)
                continue
            yield from self._image(self.by_topic[topic], log_ns, msg)
        for camera in self.cameras:  # images still waiting when the bag ended
            for held_ns, held_msg in camera.release():
                yield self._frame(camera, held_ns, held_msg)

    def _image(self, camera: BagCamera, log_ns: int, msg: Any) -> Iterator[Frame]:
        if self.warming(log_ns):
            self.summary.warmup_frames += 1
        else:
            self.summary.frames_read += 1
            self.first_ns = log_ns if self.first_ns is None else self.first_ns
            self.last_ns = log_ns
        if camera.info_topic and camera.infos.empty and not camera.gave_up_waiting:
            if camera.hold(log_ns, msg):
                return
            camera.gave_up_waiting = True  # as the node: it waits once
            for held_ns, held_msg in camera.release():
                yield self._frame(camera, held_ns, held_msg)
            return
        yield self._frame(camera, log_ns, msg)

    def warming(self, log_ns: int) -> bool:
        """Whether a frame logged at ``log_ns`` is a chunk's warm-up."""
        return self.window is not None and log_ns < self.window.start

    def _infos_before(self, first: int) -> None:
        """A chunk's cameras start with the last CameraInfo logged before its warm-up."""
        if not self.by_info or self.window is None:
            return
        last: dict[str, tuple[str, bytes]] = {}
        for topic, msgtype, _, data in self.bag.messages(
                set(self.by_info), max(0, first - self.window.info_lookback), first):
            last[topic] = (msgtype, data)
        for topic, (msgtype, data) in last.items():
            with contextlib.suppress(Exception):  # a bad one: as if there were none
                self.by_info[topic].infos.add(self.bag.deserialize(data, msgtype))

    def _frame(self, camera: BagCamera, log_ns: int, msg: Any) -> Frame:
        """One image decoded, with its intrinsics and time (see module)."""
        header = msg.header
        stamp = messages.stamp_ns(header.stamp) or log_ns  # a zero stamp: the recording time
        frame = Frame(camera, messages.stamp_ns(header.stamp), None, log_ns=log_ns,
                      header=header, stream=header.frame_id, time_s=stamp * 1e-9,
                      warming=self.warming(log_ns))
        try:
            image = (messages.compressed_to_bgr(msg) if camera.msgtype == COMPRESSED
                     else messages.image_to_bgr(msg))
        except DenseHeadPoseError as exc:
            self.summary.frames_unusable += 1
            self.say_once("unusable", f"{camera.key}: unusable image ({exc}); such frames "
                          f"get empty outputs, as live")
            return frame
        height, width = image.shape[:2]
        intrinsics, problem = camera.infos.match(header.frame_id, header.stamp, width, height)
        fallback = self.default_intrinsics
        if camera.infos.empty:
            self.say_once("camera_info", f"{camera.key}: no CameraInfo "
                          f"{'yet' if camera.info_topic else 'topic beside it'}: "
                          f"{'--intrinsics' if fallback else 'f = image width, centred'}")
        elif problem:
            self.say_once("camera_info", f"{camera.key}: {problem}")
        previous = camera.last_stamp.get(header.frame_id)
        if previous is not None and stamp < previous:
            self.summary.stamps_back += 1
            self.say_once("stamps", f"{camera.key}: header stamps go back (by "
                          f"{(previous - stamp) * 1e-9:.3f} s); tracks restart there, as live")
        camera.last_stamp[header.frame_id] = stamp
        frame.image = image
        frame.intrinsics = intrinsics or fallback
        return frame

    def say_once(self, kind: str, text: str) -> None:
        """Log a kind of problem once per bag (then it is only counted)."""
        if kind not in self.summary.said:
            self.summary.said.add(kind)
            LOG.warning("%s: %s", Path(self.summary.path).name, text)

    def recorded_s(self) -> float:
        """The recording's span of camera frames, n frame periods for n frames."""
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        span = (self.last_ns - self.first_ns) * 1e-9
        n = self.summary.frames_read
        return span * n / (n - 1) if n > 1 else span
