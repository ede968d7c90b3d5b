"""Recorded bags in, head poses out: what the live node would have published, offline.

``dense-head-pose bag IN...`` reads a recording's camera topic(s) (``sensor_msgs/Image`` or
``CompressedImage``, with the CameraInfo beside each), runs the same estimator and tracker as
``head_pose_node`` with the messages' header stamps as time, and writes, as asked:

* a bag (rosbag2, MCAP or sqlite3) with the messages the node publishes for each frame:
  ``head_pose``, ``head_poses``, ``faces``, ``/tf`` and, where hri_msgs' definitions are
  installed, the ROS4HRI topics (``/humans/faces/tracked``, each face's ``roi`` and
  ``landmarks``) -- built by the node's own message builders (:mod:`.messages`), stamped with
  the images' stamps and logged at the images' recording times;
* a CSV time series, a row per face per frame;
* a PNG plot of yaw, pitch and roll against time, a line per face id, broken where the face
  was not seen.

One rule for every problem a recording can have: say it, count it, go on. A message that
does not deserialize, an image that does not decode or has an encoding the node does not
take (the node's answer: an empty ``faces`` and ``tracked``), stamps going back (the tracker
starts again, as live), a cut-off recording (read up to the cut, :mod:`.bag_io`). Outputs are
written as frames are processed and closed whatever ends the run (the end, Ctrl-C, SIGTERM,
an error, a disk that fills up), so an interrupted run leaves a valid, shorter bag and CSV;
the CSV holds whole rows only, and a run stops before the disk is full rather than after.

Several camera topics in one bag are processed as ``multi_camera.launch.py`` would: camera
topic ``/NAME/image_raw`` gets outputs under ``/NAME/`` and face ids prefixed ``NAME_``
(``/x/front/image`` and ``/y/front/image``: ``x_front_`` and ``y_front_``; prefixes are
unique per camera), its own ``/NAME/humans/faces/tracked``, and ``/humans/faces/tracked``
the union of them (:class:`~.tracked_union.TrackedUnion`, the merger's rule).

Many bags (:func:`process_bags`): one bag that fails, for whatever reason, is reported with
that reason and the others are processed; ``jobs`` processes share them, and a stop signal
to the command stops every worker with its outputs closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import messages
from .bag_io import (
    CAMERA_INFO,
    COMPRESSED,
    FREE_SPACE_MARGIN,
    IMAGE_TYPES,
    BagError,
    BagInput,
    BagOutput,
    CsvOutput,
    OutputFullError,
    free_bytes,
    open_bag,
    typestore,
)
from .camera_info import CameraInfoCache
from .errors import DenseHeadPoseError
from .estimator import EstimatorOptions, HeadPoseEstimator
from .face_ids import FaceIds, id_prefix_problem, tf_name
from .output_files import (
    check_new_file,
    input_stem,
    make_directory,
    plot_path,
    refuse_inputs,
)
from .pose import CameraIntrinsics
from .results import Face
from .streams import TrackerPool
from .tracked_union import TrackedUnion
from .tracking import TrackerOptions

LOG = logging.getLogger("dense_head_pose.bag")
TRACKED = "/humans/faces/tracked"
CSV_COLUMNS = ("stamp", "camera", "id", "yaw_deg", "pitch_deg", "roll_deg", "x_m", "y_m",
               "z_m", "qx", "qy", "qz", "qw", "score")
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


def csv_stamp(nanoseconds: int) -> str:
    """A stamp in seconds, exact to the nanosecond (no float rounding; -4.5 s is
    ``-4.500000000``)."""
    sign = "-" if nanoseconds < 0 else ""
    seconds, fraction = divmod(abs(nanoseconds), 1_000_000_000)
    return f"{sign}{seconds}.{fraction:09d}"


class _Outputs:
    """The output bag, the CSV and the plot's series, fed frame by frame."""

    def __init__(self, options: BagOptions, store: Any, hri: bool,
                 stack: contextlib.ExitStack) -> None:
        self.options = options
        self.store = store
        self.hri = hri
        self.bag = self.csv = None
        if options.csv:
            self.csv = CsvOutput(options.csv, CSV_COLUMNS)
            stack.callback(self.csv.close)
        if options.out:
            self.bag = BagOutput(options.out, store, options.storage)
        self.series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
        self.union = TrackedUnion(stale_after=1.0)
        self.several = False
        self._disks = sorted({str(p.parent if p != options.out else p) for p in
                              (options.out, options.csv) if p is not None})

    def types(self, name: str) -> Any:
        return self.store.types[name]

    def _write(self, topic: str, msgtype: str, message: Any, log_ns: int) -> None:
        if self.bag is not None:
            self.bag.write(topic, msgtype, message, log_ns)

    def check_space(self) -> None:
        """:class:`OutputFullError` when an output's disk is nearly full: the run stops
        while closing the outputs still fits (see ``FREE_SPACE_MARGIN``)."""
        for disk in self._disks:
            free = free_bytes(Path(disk))
            if free < FREE_SPACE_MARGIN:
                raise OutputFullError(f"the disk of {disk} is full ({free >> 10} KiB free)")

    def frame(self, camera: _Camera, header: Any, log_ns: int, width: int, height: int,
              faces: Sequence[Face] | None) -> None:
        """One frame's outputs; ``faces`` None: an unusable image."""
        self.check_space()
        t = self.types
        usable = faces is not None
        faces = list(faces or [])
        self._write(camera.topic_name("faces"), "dense_head_pose/msg/FaceArray",
                    messages.face_array(t, header, width if usable else 0,
                                        height if usable else 0, faces), log_ns)
        names = [tf_name(camera.ids if self.hri else None, camera.id_prefix, f.id)
                 for f in faces]
        if usable:
            if faces:
                self._write(camera.topic_name("head_pose"), "geometry_msgs/msg/PoseStamped",
                            messages.pose_stamped(t, header, faces[0]), log_ns)
            self._write(camera.topic_name("head_poses"), "geometry_msgs/msg/PoseArray",
                        messages.pose_array(t, header, faces), log_ns)
            if faces:
                transforms = messages.face_transforms(
                    t, header, faces, names, self.options.face_frame_prefix,
                    self.options.gaze_frame_prefix)
                self._write("/tf", "tf2_msgs/msg/TFMessage",
                            messages.tf_message(t, transforms), log_ns)
        if self.hri:
            self._hri(camera, header, log_ns, width, height, faces, names)
        stamp = messages.stamp_ns(header.stamp)
        rows = []
        for face, name in zip(faces, names):
            self.series[name].append((stamp * 1e-9, face.yaw, face.pitch, face.roll))
            p = face.pose
            rows.append([csv_stamp(stamp), camera.topic, name, f"{face.yaw:.4f}",
                         f"{face.pitch:.4f}", f"{face.roll:.4f}",
                         *(f"{v:.6f}" for v in p.translation),
                         *(f"{v:.7f}" for v in p.quaternion_xyzw), f"{face.score:.4f}"])
        if self.csv is not None and rows:
            self.csv.rows(rows)

    def _hri(self, camera: _Camera, header: Any, log_ns: int, width: int, height: int,
             faces: list[Face], names: list[str]) -> None:
        t = self.types
        tracked = camera.topic_name("humans/faces/tracked") if self.several else TRACKED
        self._write(tracked, "hri_msgs/msg/IdsList", messages.ids_list(t, header, names),
                    log_ns)
        if self.several:  # the merger's union, in the recording's time
            union = self.union.update(camera.topic, names, log_ns * 1e-9)
            self._write(TRACKED, "hri_msgs/msg/IdsList", messages.ids_list(t, header, union),
                        log_ns)
        for face, name in zip(faces, names):
            self._write(f"{TRACKED.rsplit('/', 1)[0]}/{name}/roi",
                        "hri_msgs/msg/NormalizedRegionOfInterest2D",
                        messages.roi(t, header, face, width, height), log_ns)
            self._write(f"{TRACKED.rsplit('/', 1)[0]}/{name}/landmarks",
                        "hri_msgs/msg/FacialLandmarks",
                        messages.facial_landmarks(t, header, face, width, height), log_ns)

    def close(self) -> int:
        written = 0
        if self.bag is not None:
            written = self.bag.written
            self.bag.close()
        return written


class _BagRun:
    """One bag being processed: its cameras, trackers and outputs, frame by frame."""

    def __init__(self, bag: BagInput, estimator: HeadPoseEstimator, tracker: TrackerOptions,
                 options: BagOptions, outputs: _Outputs, summary: BagSummary,
                 on_frame: Callable[[int, int | None], None] | None) -> None:
        self.bag = bag
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
        for topic, msgtype, log_ns, data in self.bag.messages(topics):
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

    def _process(self, camera: _Camera, log_ns: int, msg: Any) -> None:
        faces = _frame(camera, log_ns, msg, self.pools[camera.topic], self.outputs,
                       self.summary)
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
                on_frame: Callable[[int, int | None], None] | None = None) -> BagSummary:
    """Process one bag (see the module docstring); its summary. ``on_frame(n, total)`` hears
    of progress. Ctrl-C or SIGTERM (raised as exceptions) end it with the outputs closed and
    valid; the summary then says ``interrupted`` and the exception goes on. A disk that
    fills up ends it the same way, and the summary says so in ``error``."""
    store, hri_known = typestore()
    hri = hri_known if options.hri is None else options.hri
    if options.hri and not hri_known:
        raise BagError("--hri needs hri_msgs' message definitions (ros-$ROS_DISTRO-hri-msgs, "
                       "or a colcon build of hri_msgs sourced)")
    summary = BagSummary(str(path))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with open_bag(path, store) as bag, contextlib.ExitStack() as stack:
        summary.recovered = bag.recovered
        outputs = _Outputs(options, store, hri, stack)
        stack.callback(lambda: setattr(summary, "messages_written", outputs.close()))
        run = _BagRun(bag, estimator, tracker, options, outputs, summary, on_frame)
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


def _plot(outputs: _Outputs, options: BagOptions, path: str | Path,
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


def _frame(camera: _Camera, log_ns: int, msg: Any, pool: TrackerPool, outputs: _Outputs,
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
    summary.frames_processed += 1
    outputs.frame(camera, header, log_ns, width, height, result.faces)
    return result.faces


# ------------------------------------------------------------------------------- plot
def gaps_as_nan(samples: Sequence[tuple[float, ...]], period: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of one face with a NaN row where it went unseen for more than 1.5
    frame periods, so a plotted line breaks there instead of bridging the gap."""
    data = np.asarray(samples, dtype=float)
    if len(data) < 2 or not period > 0:
        return data[:, 0], data[:, 1:]
    breaks = np.nonzero(np.diff(data[:, 0]) > 1.5 * period)[0]
    for i in breaks[::-1]:
        data = np.insert(data, i + 1, np.nan, axis=0)
    return data[:, 0], data[:, 1:]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BagError("--plot needs matplotlib: pip install 'dense_head_pose[bag]'") from None
    return plt


def plot_series(series: dict[str, list[tuple[float, float, float, float]]], path: Path,
                title: str = "") -> None:
    """Yaw, pitch and roll against time (seconds from the first frame), a line per face."""
    plt = _pyplot()
    times = sorted(t for samples in series.values() for t, *_ in samples)
    start = times[0] if times else 0.0
    period = float(np.median(np.diff(np.unique(times)))) if len(set(times)) > 1 else 0.0
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(10, 7), constrained_layout=True)
    try:
        for name, samples in sorted(series.items(), key=lambda kv: kv[1][0][0]):
            t, values = gaps_as_nan(samples, period)
            for k, ax in enumerate(axes):
                ax.plot(t - start, values[:, k], label=name, linewidth=1.2)
        for ax, label in zip(axes, ("yaw", "pitch", "roll")):
            ax.set_ylabel(f"{label} (deg)")
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("time (s, from the first frame)")
        if series and len(series) <= 12:
            axes[0].legend(loc="upper right", fontsize="small", ncol=min(len(series), 4))
        elif series:
            axes[0].set_title(f"{len(series)} faces")
        fig.suptitle(title or "head pose")
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


# -------------------------------------------------------------------------- many bags
def output_paths(inputs: Sequence[str], options: BagOptions) -> list[BagOptions]:
    """Each input's options, every output checked before any work. With one input the
    paths are the outputs themselves; with several they are directories (made if needed)
    holding one output per input, named after it (``OUT/<bag>``, ``CSV/<bag>.csv``,
    ``PLOT/<bag>.png``; inputs of the same name in different directories are told apart by
    their directories). :class:`OutputPathError` (exit 2) if an output exists, cannot be
    written, or would be an input or lie inside one."""
    if options.plot:
        _pyplot()  # before hours of work, not after
    out = [_single(options)] if len(inputs) == 1 else _per_input(inputs, options)
    for o in out:
        for flag, target in (("--out", o.out), ("--csv", o.csv), ("--plot", o.plot)):
            if target is not None:
                refuse_inputs(flag, target, inputs)
                check_new_file(flag, target)
    return out


def _single(options: BagOptions) -> BagOptions:
    return replace(options, plot=plot_path(options.plot) if options.plot else None)


def unique_names(inputs: Sequence[str], suffixes: tuple[str, ...] = (".mcap", ".db3", ".bag")
                 ) -> list[str]:
    """A name per input, all different: its own name (:func:`input_stem`), preceded by as
    many of its parent directories' names as it takes to tell it from the others."""
    paths = [Path(os.path.realpath(i)) for i in inputs]
    stems = [input_stem(i, suffixes) for i in inputs]

    def name(i: int, depth: int) -> str:
        parents = paths[i].parent.parts[-depth:] if depth else ()
        return "-".join([*parents, stems[i]]).lstrip("/-")

    names = []
    for i in range(len(paths)):
        depth = 0
        while depth < len(paths[i].parts) and any(
                paths[j] != paths[i] and name(j, depth) == name(i, depth)
                for j in range(len(paths))):
            depth += 1
        names.append(name(i, depth))
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # the same input twice
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique


def _per_input(inputs: Sequence[str], options: BagOptions) -> list[BagOptions]:
    names = unique_names(inputs)
    for flag, directory in (("--out", options.out), ("--csv", options.csv),
                            ("--plot", options.plot)):
        if directory is not None:
            refuse_inputs(flag, directory, inputs)
            make_directory(flag, directory)
    return [replace(options,
                    out=options.out / name if options.out else None,
                    csv=options.csv / f"{name}.csv" if options.csv else None,
                    plot=options.plot / f"{name}.png" if options.plot else None)
            for name in names]


_STOPPING = False
_PROGRESS: Any = None


def _worker_init(progress: Any) -> None:
    """In a worker: SIGTERM stops the bag as Ctrl-C does (its outputs closed, valid), and
    once stopped the worker takes no further bag."""
    global _PROGRESS
    _PROGRESS = progress

    def stop(signum: int, frame: object) -> None:
        global _STOPPING
        _STOPPING = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _worker(path: str, estimator_options: EstimatorOptions, models: str | None,
            tracker: TrackerOptions, options: BagOptions) -> BagSummary | BagFailure:
    """One bag in a worker process (``--jobs``): its own estimator, one thread."""
    if _STOPPING:
        raise KeyboardInterrupt
    sent = [0]

    def on_frame(n: int, total: int | None) -> None:
        if _PROGRESS is not None and n - sent[0] >= 10:
            _PROGRESS.put(n - sent[0])
            sent[0] = n

    try:
        estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
        summary = process_bag(path, estimator, tracker, options, on_frame)
    except Exception as exc:  # anything: reported for this bag, the batch goes on
        return BagFailure(str(path), _reason(exc))
    if _PROGRESS is not None:
        _PROGRESS.put(summary.frames_read - sent[0])
    return summary


def _reason(exc: BaseException) -> str:
    """An exception as one line: our errors' own message, others' type too."""
    text = " ".join(str(exc).split())[:500]
    if isinstance(exc, DenseHeadPoseError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def process_bags(inputs: Sequence[str], estimator_options: EstimatorOptions,
                 models: str | None, tracker: TrackerOptions, options: BagOptions,
                 jobs: int = 1, progress_factory: Callable[[int | None], Any] | None = None
                 ) -> Iterator[BagSummary | BagFailure]:
    """Process ``inputs``, ``jobs`` at a time (a process each); each bag's summary, or a
    :class:`BagFailure` saying why it could not be processed, as it finishes. A bag that
    fails, for whatever reason, does not stop the others."""
    per_bag = output_paths(inputs, options)
    if jobs <= 1 or len(inputs) == 1:
        yield from _serial(inputs, per_bag, estimator_options, models, tracker,
                           progress_factory)
        return
    yield from _parallel(inputs, per_bag, estimator_options, models, tracker, jobs,
                         progress_factory)


def _serial(inputs: Sequence[str], per_bag: Sequence[BagOptions],
            estimator_options: EstimatorOptions, models: str | None,
            tracker: TrackerOptions, progress_factory: Callable[[int | None], Any] | None
            ) -> Iterator[BagSummary | BagFailure]:
    estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
    for path, bag_options in zip(inputs, per_bag):
        bar = progress_factory(None) if progress_factory else None
        seen = [0]

        def on_frame(n: int, total: int | None, bar: Any = bar, seen: list = seen) -> None:
            if bar is not None:
                if total and bar.total != total:
                    bar.total = total
                bar.update(n - seen[0])
                seen[0] = n

        try:
            result: BagSummary | BagFailure = process_bag(path, estimator, tracker,
                                                          bag_options, on_frame)
        except Exception as exc:  # anything: reported for this bag, the batch goes on
            result = BagFailure(str(path), _reason(exc))
        finally:
            if bar is not None:
                bar.close()
        yield result


def _parallel(inputs: Sequence[str], per_bag: Sequence[BagOptions],
              estimator_options: EstimatorOptions, models: str | None,
              tracker: TrackerOptions, jobs: int,
              progress_factory: Callable[[int | None], Any] | None
              ) -> Iterator[BagSummary | BagFailure]:
    """``jobs`` worker processes, one bag each at a time; one progress bar of frames. A
    worker that dies takes only its own bag down: the bags it shared the pool with are
    run again, one at a time, so the one that kills its worker is found and reported."""
    import multiprocessing
    import queue

    context = multiprocessing.get_context("spawn")  # no LiteRT state forked
    progress = context.Queue()
    bar = progress_factory(None) if progress_factory else None
    work = list(zip(inputs, per_bag))
    suspects: list[tuple[str, BagOptions]] = []

    def drain() -> None:
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            while True:
                n = progress.get_nowait()
                if bar is not None:
                    bar.update(n)

    try:
        while work or suspects:
            batch, size = (work, jobs) if work else (suspects[:1], 1)
            if not work:
                suspects = suspects[1:]
            broken: list[tuple[str, BagOptions]] = []
            for item, result in _pool_run(context, batch, size, progress, drain,
                                          (estimator_options, models, tracker)):
                if result is None:
                    broken.append(item)
                else:
                    yield result
            work = []
            if size == 1:
                yield from (BagFailure(path, "its worker process died (killed, or a crash in "
                                       "native code)") for path, _ in broken)
            else:
                suspects += broken
    finally:
        drain()
        if bar is not None:
            bar.close()
        progress.close()


def _pool_run(context: Any, work: Sequence[tuple[str, BagOptions]], jobs: int,
              progress: Any, drain: Callable[[], None], shared: tuple[Any, ...]
              ) -> Iterator[tuple[tuple[str, BagOptions], BagSummary | BagFailure | None]]:
    """Run ``work`` in a pool of ``jobs`` processes; each item with its result, None when
    its worker died. Whatever stops the caller (Ctrl-C, SIGTERM) stops every worker, each
    closing its outputs as a single process does, and waits for them."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init,
                               initargs=(progress,))
    try:
        pending = {pool.submit(_worker, path, *shared[:2], shared[2], options): (path, options)
                   for path, options in work}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for future in done:
                item = pending.pop(future)
                try:
                    yield item, future.result()
                except BrokenProcessPool:
                    yield item, None
                except Exception as exc:
                    yield item, BagFailure(item[0], _reason(exc))
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: Any) -> None:
    """SIGTERM to every worker (each closes its outputs and takes no further bag)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(OSError, ValueError):
            os.kill(process.pid, signal.SIGTERM)
