"""One recording in, head poses out: what the live node would have published, offline.

:func:`process_bag` reads a recording's camera topic(s) (``sensor_msgs/Image`` or
``CompressedImage``, with the CameraInfo beside each), runs the same estimator and tracker as
``head_pose_node`` with the messages' header stamps as time, and writes what
:mod:`.outputs` makes of each frame (an output bag, a CSV, a plot).

One rule for every problem a recording can have: say it, count it, go on. A message that
does not deserialize, an image that does not decode or has an encoding the node does not
take (the node's answer: an empty ``faces`` and ``tracked``), stamps going back (the tracker
starts again, as live), a cut-off recording (read up to the cut, :mod:`.rosbag_io`). Outputs
are written as frames are processed and closed whatever ends the run (the end, Ctrl-C,
SIGTERM, an error, a disk that fills up), so an interrupted run leaves a valid, shorter bag
and CSV.

Several camera topics in one bag are processed as ``multi_camera.launch.py`` would: camera
topic ``/NAME/image_raw`` gets outputs under ``/NAME/`` and face ids prefixed ``NAME_``
(``/x/front/image`` and ``/y/front/image``: ``x_front_`` and ``y_front_``; prefixes are
unique per camera), its own ``/NAME/humans/faces/tracked``, and ``/humans/faces/tracked``
the union of them (the merger's rule).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError
from ..interfaces import messages
from ..interfaces.camera_info import CameraInfoCache
from ..interfaces.face_ids import FaceIds, id_prefix_problem
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import Face
from ..video.streams import TrackerPool
from ..video.tracking import TrackerOptions
from .outputs import RecordingOutputs, plot_series
from .rosbag_io import (
    CAMERA_INFO,
    COMPRESSED,
    IMAGE_TYPES,
    BagError,
    BagInput,
    OutputFullError,
    open_bag,
    typestore,
)

#: The logger of ``dense-head-pose bag`` (its lines read ``... dense_head_pose.bag: ...``).
LOG = logging.getLogger("dense_head_pose.bag")
_FIRST_CAMERA_INFO_WAIT_NS = 500_000_000  # as the node: a first image may overtake it
#: Images held while waiting for the first CameraInfo: at most this many, and bytes.
MAX_PENDING_FRAMES = 30
MAX_PENDING_BYTES = 256 << 20


@dataclass(frozen=True)
class BagOptions:
    """What to read and what to write (the estimator's and tracker's options apart)."""

    image_topics: tuple[str, ...] = ()
    """Camera topics; empty: every image topic of the bag."""
    camera_info_topic: str | None = None
    """With one camera topic: its CameraInfo topic (default: ``camera_info`` beside it)."""
    out: Path | None = None
    storage: str = "mcap"
    csv: Path | None = None
    plot: Path | None = None
    hri: bool | None = None
    """ROS4HRI topics in the output bag; None: when hri_msgs' definitions are installed."""
    deterministic_ids: bool = False
    face_id_prefix: str = ""
    """Prefix of the face ids; with several cameras, each camera's prefix follows it."""
    default_intrinsics: CameraIntrinsics | None = None
    """For frames without a CameraInfo (None: f = image width, centred, as the node)."""
    face_frame_prefix: str = "face_"
    gaze_frame_prefix: str = "gaze_"

    def __post_init__(self) -> None:
        problem = id_prefix_problem(self.face_id_prefix)
        if problem:
            raise ValueError(f"--face-id-prefix {problem}")
        if self.storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be mcap or sqlite3, got {self.storage!r}")


@dataclass(frozen=True)
class Window:
    """A time chunk of a recording (log times, ns): frames in [``start``, ``stop``) are
    processed and written; those of the ``warmup`` before ``start`` are processed, so the
    trackers and filters have settled at ``start``, and kept apart (their CSV rows in
    :attr:`RecordingOutputs.warmup_rows`) to join the face ids across the border."""

    start: int
    stop: int | None
    warmup: int
    #: How far before the warm-up the last CameraInfo of each camera is looked for.
    info_lookback: int = 30_000_000_000


@dataclass
class BagSummary:
    """What happened to one bag."""

    path: str
    cameras: list[str] = field(default_factory=list)
    frames_read: int = 0
    frames_processed: int = 0
    frames_unusable: int = 0
    """Images that did not decode or have an encoding the node does not take."""
    undeserializable: int = 0
    """Messages whose bytes are not the type their topic says."""
    stamps_back: int = 0
    warmup_frames: int = 0
    """Frames of a chunk's warm-up (processed, not written; not in the counts above)."""
    faces: int = 0
    face_ids: int = 0
    recorded_s: float = 0.0
    """Time span of the camera messages in the recording."""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    messages_written: int = 0
    recovered: str | None = None
    problems: list[str] = field(default_factory=list)
    interrupted: bool = False
    error: str | None = None
    """Why the run stopped before the end of the bag (a full disk), or None."""
    said: set[str] = field(default_factory=set, repr=False)
    """Kinds of problem already logged (each is logged once per bag, then counted)."""

    @property
    def real_time_factor(self) -> float:
        """Recorded time per second of processing (4.0: four times faster than real time)."""
        return self.recorded_s / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def failed(self) -> bool:
        """Whether the bag was not processed to its end (see :attr:`error`)."""
        return self.error is not None

    def lines(self) -> list[str]:
        """The summary as a few lines of text."""
        out = [f"{self.path}: {self.frames_read} frame(s) read from "
               f"{', '.join(self.cameras) or 'no camera topic'}, {self.frames_processed} "
               f"processed, {self.faces} face(s) in them, {self.face_ids} face id(s)",
               f"  {self.recorded_s:.1f} s of recording in {self.wall_s:.1f} s "
               f"({self.real_time_factor:.1f}x real time; CPU {self.cpu_s:.1f} s)"]
        counts = [(self.frames_unusable, "unusable image(s) (empty outputs, as live)"),
                  (self.undeserializable, "message(s) that did not deserialize (skipped)"),
                  (self.stamps_back, "time(s) the stamps went back (tracks restarted)")]
        out += [f"  {n} {what}" for n, what in counts if n]
        if self.recovered:
            out.append(f"  recording {self.recovered}")
        out += [f"  {p}" for p in self.problems]
        if self.error:
            out.append(f"  stopped: {self.error}; the outputs hold the frames processed "
                       "before it, closed and whole")
        if self.interrupted:
            out.append("  interrupted: the outputs hold the frames processed so far")
        return out

    def record(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (``--json``)."""
        record = {k: v for k, v in asdict(self).items() if k != "said"}
        return {**record, "real_time_factor": self.real_time_factor, "failed": self.failed}


@dataclass(frozen=True)
class BagFailure:
    """A bag that could not be processed at all, and why."""

    path: str
    reason: str
    failed: bool = True

    def lines(self) -> list[str]:
        return [f"{self.path}: not processed: {self.reason}"]

    def record(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.reason, "failed": True}


@dataclass
class _Camera:
    """One camera topic of the bag and everything kept per camera."""

    topic: str
    msgtype: str
    info_topic: str | None
    namespace: str
    ids: FaceIds
    id_prefix: str
    infos: CameraInfoCache = field(default_factory=CameraInfoCache)
    pending: list[tuple[int, Any]] = field(default_factory=list)
    pending_bytes: int = 0
    gave_up_waiting: bool = False
    last_stamp: dict[str, int] = field(default_factory=dict)

    def topic_name(self, name: str) -> str:
        return f"{self.namespace}/{name}"

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


def cameras_of(bag: BagInput, options: BagOptions, hri_ids: bool) -> list[_Camera]:
    """The camera topics to process and their CameraInfo topics; BagError with the fix when
    a named topic is missing or of another type."""
    images = {n: t for n, t in bag.topics.items() if t.msgtype in IMAGE_TYPES}
    if options.image_topics:
        for name in options.image_topics:
            topic = bag.topics.get(name)
            if topic is None:
                raise BagError(f"{bag.path}: no topic {name}; its image topics: "
                               f"{', '.join(sorted(images)) or 'none'}")
            if topic.msgtype not in IMAGE_TYPES:
                raise BagError(f"{bag.path}: {name} is {topic.msgtype}, not an image topic "
                               f"(sensor_msgs/msg/Image or CompressedImage); image topics: "
                               f"{', '.join(sorted(images)) or 'none'}")
        chosen = list(dict.fromkeys(options.image_topics))
    else:
        if not images:
            raise BagError(f"{bag.path}: no image topic (sensor_msgs/msg/Image or "
                           f"CompressedImage); its topics: {', '.join(sorted(bag.topics))}")
        chosen = sorted(images)
    if options.camera_info_topic and len(chosen) > 1:
        raise BagError("--camera-info-topic goes with one image topic; with several, each "
                       "one's camera_info beside it is used")
    several = len(chosen) > 1
    parents = []
    for name in chosen:
        base = name[: -len("/compressed")] if images[name].msgtype == COMPRESSED and \
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
        cameras.append(_Camera(name, images[name].msgtype, info_topic,
                               parent if several else "",
                               FaceIds(options.deterministic_ids, prefix=prefix), prefix))
    return cameras


class _BagRun:
    """One bag being processed: its cameras, trackers and outputs, frame by frame."""

    def __init__(self, bag: BagInput, estimator: HeadPoseEstimator, tracker: TrackerOptions,
                 options: BagOptions, outputs: RecordingOutputs, summary: BagSummary,
                 on_frame: Callable[[int, int | None], None] | None,
                 window: Window | None = None) -> None:
        self.bag = bag
        self.window = window
        self.cameras = cameras_of(bag, options, outputs.hri)
        self.outputs = outputs
        self.summary = summary
        self.on_frame = on_frame
        outputs.several = len(self.cameras) > 1
        self.pools = {c.topic: TrackerPool(estimator, tracker) for c in self.cameras}
        self.total = sum(bag.topics[c.topic].count or 0 for c in self.cameras) or None
        self.by_topic = {c.topic: c for c in self.cameras}
        self.by_info = {c.info_topic: c for c in self.cameras if c.info_topic}
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def run(self) -> None:
        """Every message of the camera topics, in recording order."""
        summary = self.summary
        topics = set(self.by_topic) | set(self.by_info)
        first = stop = None
        if self.window is not None:
            first, stop = self.window.start - self.window.warmup, self.window.stop
            self._infos_before(first)
        for topic, msgtype, log_ns, data in self.bag.messages(topics, first, stop):
            try:
                msg = self.bag.deserialize(data, msgtype)
            except Exception as exc:  # bytes that are not this type: say, count, go on
                summary.undeserializable += 1
                _say_once(summary, "undeserializable", f"{topic}: a message that does not "
                          f"deserialize as {msgtype} ({type(exc).__name__}: {exc})")
                continue
            if topic in self.by_info:
                camera = self.by_info[topic]
                camera.infos.add(msg)
                for held_ns, held in camera.release():  # the images that waited for it
                    self._process(camera, held_ns, held)
                continue
            camera = self.by_topic[topic]
            if self._warming(log_ns):
                summary.warmup_frames += 1
            else:
                summary.frames_read += 1
                self.first_ns = log_ns if self.first_ns is None else self.first_ns
                self.last_ns = log_ns
            if camera.info_topic and camera.infos.empty and not camera.gave_up_waiting:
                if camera.hold(log_ns, msg):
                    continue
                camera.gave_up_waiting = True  # as the node: it waits once
                for held_ns, held_msg in camera.release():
                    self._process(camera, held_ns, held_msg)
                continue
            self._process(camera, log_ns, msg)
        for camera in self.cameras:  # images still waiting when the bag ended
            for held_ns, held_msg in camera.release():
                self._process(camera, held_ns, held_msg)

    def _warming(self, log_ns: int) -> bool:
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

    def _process(self, camera: _Camera, log_ns: int, msg: Any) -> None:
        warming = self.outputs.warming = self._warming(log_ns)
        faces = _frame(camera, log_ns, msg, self.pools[camera.topic], self.outputs,
                       self.summary)
        if warming:
            return
        if faces:
            self.summary.faces += len(faces)
        if self.on_frame:
            self.on_frame(self.summary.frames_read, self.total)

    def recorded_s(self) -> float:
        """The recording's span of camera frames, n frame periods for n frames."""
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        span = (self.last_ns - self.first_ns) * 1e-9
        n = self.summary.frames_read
        return span * n / (n - 1) if n > 1 else span


def process_bag(path: str | Path, estimator: HeadPoseEstimator, tracker: TrackerOptions,
                options: BagOptions,
                on_frame: Callable[[int, int | None], None] | None = None,
                window: Window | None = None, outputs_out: list | None = None) -> BagSummary:
    """Process one bag (see the module docstring), or one time chunk of it (``window``);
    its summary. ``on_frame(n, total)`` hears of progress. Ctrl-C or SIGTERM (raised as
    exceptions) end it with the outputs closed and valid; the summary then says
    ``interrupted`` and the exception goes on. A disk that fills up ends it the same way,
    and the summary says so in ``error``. ``outputs_out``, if given, receives the
    :class:`RecordingOutputs` (a chunk's warm-up rows are there)."""
    store, hri_known = typestore()
    hri = hri_known if options.hri is None else options.hri
    if options.hri and not hri_known:
        raise BagError("--hri needs hri_msgs' message definitions (ros-$ROS_DISTRO-hri-msgs, "
                       "or a colcon build of hri_msgs sourced)")
    summary = BagSummary(str(path))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with open_bag(path, store) as bag, contextlib.ExitStack() as stack:
        summary.recovered = bag.recovered
        outputs = RecordingOutputs(options, store, hri, stack)
        stack.callback(lambda: setattr(summary, "messages_written", outputs.close()))
        if outputs_out is not None:
            outputs_out.append(outputs)
        run = _BagRun(bag, estimator, tracker, options, outputs, summary, on_frame, window)
        summary.cameras = [c.topic for c in run.cameras]
        try:
            run.run()
        except OutputFullError as exc:
            summary.error = str(exc)
        except BaseException:
            summary.interrupted = True
            raise
        finally:
            summary.face_ids = len(outputs.series)
            summary.problems += bag.problems
            if bag.problems and not summary.frames_read and not summary.interrupted:
                summary.error = summary.error or f"nothing could be read ({bag.problems[0]})"
            summary.recorded_s = run.recorded_s()
            summary.wall_s = time.perf_counter() - wall0
            summary.cpu_s = time.process_time() - cpu0
            _plot(outputs, options, path, summary)
            if summary.interrupted:  # the caller gets the exception, not the summary
                for line in summary.lines():
                    LOG.warning("%s", line)
    return summary


def _plot(outputs: RecordingOutputs, options: BagOptions, path: str | Path,
          summary: BagSummary) -> None:
    """The plot of what was processed; a plot that cannot be written is the summary's
    error (the other outputs are whole), never a traceback."""
    if not options.plot:
        return
    try:
        plot_series(outputs.series, options.plot, title=Path(path).name)
    except (BagError, OSError, ValueError) as exc:
        if summary.interrupted:
            return
        summary.error = summary.error or f"cannot write the plot {options.plot}: {exc}"


def _say_once(summary: BagSummary, kind: str, text: str) -> None:
    """Log a kind of problem once per bag (then it is only counted)."""
    if kind not in summary.said:
        summary.said.add(kind)
        LOG.warning("%s: %s", Path(summary.path).name, text)


def _frame(camera: _Camera, log_ns: int, msg: Any, pool: TrackerPool, outputs: RecordingOutputs,
           summary: BagSummary) -> list[Face] | None:
    """One image: decode, estimate with the stream's tracker, write the outputs."""
    header = msg.header
    try:
        image = (messages.compressed_to_bgr(msg) if camera.msgtype == COMPRESSED
                 else messages.image_to_bgr(msg))
    except DenseHeadPoseError as exc:
        summary.frames_unusable += 1
        _say_once(summary, "unusable", f"{camera.topic}: unusable image ({exc}); such frames "
                  f"get empty outputs, as live")
        outputs.frame(camera, header, log_ns, 0, 0, None)
        return None
    height, width = image.shape[:2]
    intrinsics, problem = camera.infos.match(header.frame_id, header.stamp, width, height)
    fallback = outputs.options.default_intrinsics
    if camera.infos.empty:
        _say_once(summary, "camera_info", f"{camera.topic}: no CameraInfo "
                  f"{'yet' if camera.info_topic else 'topic beside it'}: "
                  f"{'--intrinsics' if fallback else 'f = image width, centred'}")
    elif problem:
        _say_once(summary, "camera_info", f"{camera.topic}: {problem}")
    if intrinsics is None:
        intrinsics = fallback  # None: the default below
    stamp = messages.stamp_ns(header.stamp) or log_ns  # a zero stamp: the recording time
    previous = camera.last_stamp.get(header.frame_id)
    if previous is not None and stamp < previous:
        summary.stamps_back += 1
        _say_once(summary, "stamps", f"{camera.topic}: header stamps go back (by "
                  f"{(previous - stamp) * 1e-9:.3f} s); tracks restart there, as live")
    camera.last_stamp[header.frame_id] = stamp
    result = pool(image, stamp * 1e-9, intrinsics or CameraIntrinsics.default(width, height),
                  stream=header.frame_id)
    if not outputs.warming:
        summary.frames_processed += 1
    outputs.frame(camera, header, log_ns, width, height, result.faces)
    return result.faces
