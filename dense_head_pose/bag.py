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
an error), so an interrupted run leaves a valid, shorter bag and CSV.

Several camera topics in one bag are processed as ``multi_camera.launch.py`` would: camera
topic ``/NAME/image_raw`` gets outputs under ``/NAME/`` and face ids prefixed ``NAME_``,
its own ``/NAME/humans/faces/tracked``, and ``/humans/faces/tracked`` the union of them
(:class:`~.tracked_union.TrackedUnion`, the merger's rule).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import messages
from .bag_io import (
    CAMERA_INFO,
    COMPRESSED,
    IMAGE_TYPES,
    BagError,
    BagInput,
    BagOutput,
    open_bag,
    typestore,
)
from .camera_info import CameraInfoCache
from .errors import DenseHeadPoseError
from .estimator import EstimatorOptions, HeadPoseEstimator
from .face_ids import FaceIds, tf_name
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
    default_intrinsics: CameraIntrinsics | None = None
    """For frames without a CameraInfo (None: f = image width, centred, as the node)."""
    face_frame_prefix: str = "face_"
    gaze_frame_prefix: str = "gaze_"
    progress: bool = True


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
    said: set[str] = field(default_factory=set, repr=False)
    """Kinds of problem already logged (each is logged once per bag, then counted)."""

    @property
    def real_time_factor(self) -> float:
        """Recorded time per second of processing (4.0: four times faster than real time)."""
        return self.recorded_s / self.wall_s if self.wall_s > 0 else float("nan")

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
        if self.interrupted:
            out.append("  interrupted: the outputs hold the frames processed so far")
        return out


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
    gave_up_waiting: bool = False
    last_stamp: dict[str, int] = field(default_factory=dict)

    def topic_name(self, name: str) -> str:
        return f"{self.namespace}/{name}"


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
        chosen = list(options.image_topics)
    else:
        if not images:
            raise BagError(f"{bag.path}: no image topic (sensor_msgs/msg/Image or "
                           f"CompressedImage); its topics: {', '.join(sorted(bag.topics))}")
        chosen = sorted(images)
    if options.camera_info_topic and len(chosen) > 1:
        raise BagError("--camera-info-topic goes with one image topic; with several, each "
                       "one's camera_info beside it is used")
    cameras = []
    for name in chosen:
        base = name[: -len("/compressed")] if images[name].msgtype == COMPRESSED and \
            name.endswith("/compressed") else name
        parent = base.rsplit("/", 1)[0]
        info = options.camera_info_topic or f"{parent}/camera_info"
        info_topic = info if bag.topics.get(info) and \
            bag.topics[info].msgtype == CAMERA_INFO else None
        if options.camera_info_topic and info_topic is None:
            raise BagError(f"{bag.path}: {options.camera_info_topic} is not a CameraInfo "
                           f"topic of this bag")
        several = len(chosen) > 1
        namespace = parent if several else ""
        prefix = (parent.rsplit("/", 1)[-1] + "_") if several and parent else \
            options.face_id_prefix
        cameras.append(_Camera(name, images[name].msgtype, info_topic, namespace,
                               FaceIds(options.deterministic_ids, prefix=prefix), prefix))
    namespaces = [c.namespace for c in cameras]
    if len(set(namespaces)) < len(namespaces):
        raise BagError(f"{bag.path}: camera topics {', '.join(chosen)} would publish into the "
                       f"same namespace: pick one with --image-topic")
    return cameras


class _Outputs:
    """The output bag, the CSV and the plot's series, fed frame by frame."""

    def __init__(self, options: BagOptions, store: Any, hri: bool, csv_file: Any) -> None:
        self.options = options
        self.store = store
        self.hri = hri
        self.bag = BagOutput(options.out, store, options.storage) if options.out else None
        self.csv = csv.writer(csv_file) if csv_file is not None else None
        if self.csv is not None:
            self.csv.writerow(CSV_COLUMNS)
        self.series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
        self.union = TrackedUnion(stale_after=1.0)
        self.several = False

    def types(self, name: str) -> Any:
        return self.store.types[name]

    def _write(self, topic: str, msgtype: str, message: Any, log_ns: int) -> None:
        if self.bag is not None:
            self.bag.write(topic, msgtype, message, log_ns)

    def frame(self, camera: _Camera, header: Any, log_ns: int, width: int, height: int,
              faces: Sequence[Face] | None) -> None:
        """One frame's outputs; ``faces`` None: an unusable image."""
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
        exact = f"{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d}"  # no float rounding
        for face, name in zip(faces, names):
            self.series[name].append((stamp * 1e-9, face.yaw, face.pitch, face.roll))
            if self.csv is not None:
                p = face.pose
                self.csv.writerow([exact, camera.topic, name, f"{face.yaw:.4f}",
                                   f"{face.pitch:.4f}", f"{face.roll:.4f}",
                                   *(f"{v:.6f}" for v in p.translation),
                                   *(f"{v:.7f}" for v in p.quaternion_xyzw),
                                   f"{face.score:.4f}"])

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


def process_bag(path: str | Path, estimator: HeadPoseEstimator, tracker: TrackerOptions,
                options: BagOptions,
                on_frame: Callable[[int, int | None], None] | None = None) -> BagSummary:
    """Process one bag (see the module docstring); its summary. ``on_frame(n, total)`` hears
    of progress. Ctrl-C or SIGTERM (raised as exceptions) end it with the outputs closed and
    valid; the summary then says ``interrupted`` and the exception goes on."""
    store, hri_known = typestore()
    hri = hri_known if options.hri is None else options.hri
    if options.hri and not hri_known:
        raise BagError("--hri needs hri_msgs' message definitions (ros-$ROS_DISTRO-hri-msgs, "
                       "or a colcon build of hri_msgs sourced)")
    summary = BagSummary(str(path))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with open_bag(path, store) as bag, contextlib.ExitStack() as stack:
        cameras = cameras_of(bag, options, hri)
        summary.cameras = [c.topic for c in cameras]
        summary.recovered = bag.recovered
        csv_file = None
        if options.csv:
            try:
                csv_file = stack.enter_context(open(options.csv, "x", newline=""))
            except OSError as exc:
                raise BagError(f"cannot write {options.csv}: {exc.strerror}") from None
        outputs = _Outputs(options, store, hri, csv_file)
        outputs.several = len(cameras) > 1
        stack.callback(lambda: setattr(summary, "messages_written", outputs.close()))
        pools = {c.topic: TrackerPool(estimator, tracker) for c in cameras}  # a node each
        total = sum(bag.topics[c.topic].count or 0 for c in cameras) or None
        by_topic = {c.topic: c for c in cameras}
        by_info = {c.info_topic: c for c in cameras if c.info_topic}
        first_ns = last_ns = None

        def run(camera: _Camera, log_ns: int, msg: Any) -> None:
            faces = _frame(camera, log_ns, msg, pools[camera.topic], outputs, summary)
            if faces:
                summary.faces += len(faces)
            if on_frame:
                on_frame(summary.frames_read, total)

        try:
            for topic, msgtype, log_ns, data in bag.messages(set(by_topic) | set(by_info)):
                try:
                    msg = bag.deserialize(data, msgtype)
                except Exception as exc:  # bytes that are not this type: say, count, go on
                    summary.undeserializable += 1
                    _say_once(summary, "undeserializable", f"{topic}: a message that does not "
                              f"deserialize as {msgtype} ({type(exc).__name__}: {exc})")
                    continue
                if topic in by_info:
                    camera = by_info[topic]
                    camera.infos.add(msg)
                    for held_ns, held in camera.pending:  # the images that waited for it
                        run(camera, held_ns, held)
                    camera.pending.clear()
                    continue
                camera = by_topic[topic]
                summary.frames_read += 1
                first_ns = log_ns if first_ns is None else first_ns
                last_ns = log_ns
                if camera.info_topic and camera.infos.empty and not camera.gave_up_waiting:
                    camera.pending.append((log_ns, msg))
                    if log_ns - camera.pending[0][0] <= _FIRST_CAMERA_INFO_WAIT_NS:
                        continue
                    camera.gave_up_waiting = True  # as the node: it waits once
                    held, camera.pending = camera.pending, []
                    for held_ns, held_msg in held:
                        run(camera, held_ns, held_msg)
                    continue
                run(camera, log_ns, msg)
            for camera in cameras:  # images still waiting when the bag ended
                for held_ns, held_msg in camera.pending:
                    run(camera, held_ns, held_msg)
                camera.pending.clear()
        except BaseException:
            summary.interrupted = True
            raise
        finally:
            summary.face_ids = len(outputs.series)
            summary.problems += bag.problems
            summary.recorded_s = ((last_ns - first_ns) * 1e-9 if first_ns is not None else 0.0)
            if summary.frames_read > 1:  # the span covers n - 1 frame periods
                summary.recorded_s *= summary.frames_read / (summary.frames_read - 1)
            summary.wall_s = time.perf_counter() - wall0
            summary.cpu_s = time.process_time() - cpu0
            if options.plot:
                with contextlib.suppress(Exception) if summary.interrupted else \
                        contextlib.nullcontext():
                    plot_series(outputs.series, options.plot, title=Path(path).name)
            if summary.interrupted:  # the caller gets the exception, not the summary
                for line in summary.lines():
                    LOG.warning("%s", line)
    return summary


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


def plot_series(series: dict[str, list[tuple[float, float, float, float]]], path: Path,
                title: str = "") -> None:
    """Yaw, pitch and roll against time (seconds from the first frame), a line per face."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BagError("--plot needs matplotlib: pip install 'dense_head_pose[bag]'") from None
    times = sorted(t for samples in series.values() for t, *_ in samples)
    start = times[0] if times else 0.0
    period = float(np.median(np.diff(np.unique(times)))) if len(set(times)) > 1 else 0.0
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(10, 7), constrained_layout=True)
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
    plt.close(fig)


# -------------------------------------------------------------------------- many bags
def output_paths(inputs: Sequence[str], options: BagOptions) -> list[BagOptions]:
    """Each input's options. With one input the paths are the outputs themselves; with
    several they are directories (made if needed) holding one output per input, named
    after it (``OUT/<bag>``, ``CSV/<bag>.csv``, ``PLOT/<bag>.png``). BagError if any
    exists."""
    out = [options] if len(inputs) == 1 else _per_input(inputs, options)
    for o in out:  # before hours of work, not after
        for target in (o.out, o.csv, o.plot):
            if target is not None and target.exists():
                raise BagError(f"{target} exists: outputs are never written over")
    return out


def _per_input(inputs: Sequence[str], options: BagOptions) -> list[BagOptions]:
    names = [Path(i).name.removesuffix(".mcap").removesuffix(".db3") for i in inputs]
    if len(set(names)) < len(names):
        raise BagError("two inputs have the same name: their outputs would collide")
    out = []
    for directory in (options.out, options.csv, options.plot):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        out.append(replace(
            options,
            out=options.out / name if options.out else None,
            csv=options.csv / f"{name}.csv" if options.csv else None,
            plot=options.plot / f"{name}.png" if options.plot else None))
    return out


def _worker_init() -> None:
    """In a worker: SIGTERM stops the bag as Ctrl-C does (its outputs closed, valid)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _worker(path: str, estimator_options: EstimatorOptions, models: str | None,
            tracker: TrackerOptions, options: BagOptions, progress: Any) -> BagSummary:
    """One bag in a worker process (``--jobs``): its own estimator, one thread."""
    estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
    sent = [0]

    def on_frame(n: int, total: int | None) -> None:
        if progress is not None and n - sent[0] >= 10:
            progress.put(n - sent[0])
            sent[0] = n

    summary = process_bag(path, estimator, tracker, options, on_frame)
    if progress is not None:
        progress.put(summary.frames_read - sent[0])
    return summary


def process_bags(inputs: Sequence[str], estimator_options: EstimatorOptions,
                 models: str | None, tracker: TrackerOptions, options: BagOptions,
                 jobs: int = 1, progress_factory: Callable[[int | None], Any] | None = None
                 ) -> Iterator[BagSummary | BagError]:
    """Process ``inputs``, ``jobs`` at a time (a process each); each bag's summary (or the
    BagError that stopped it) as it finishes. A bag that fails does not stop the others."""
    per_bag = output_paths(inputs, options)
    if jobs <= 1 or len(inputs) == 1:
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
                yield process_bag(path, estimator, tracker, bag_options, on_frame)
            except BagError as exc:
                yield exc
            finally:
                if bar is not None:
                    bar.close()
        return
    yield from _parallel(inputs, per_bag, estimator_options, models, tracker, jobs,
                         progress_factory)


def _parallel(inputs: Sequence[str], per_bag: Sequence[BagOptions],
              estimator_options: EstimatorOptions, models: str | None,
              tracker: TrackerOptions, jobs: int,
              progress_factory: Callable[[int | None], Any] | None
              ) -> Iterator[BagSummary | BagError]:
    """``jobs`` worker processes, one bag each at a time; one progress bar of frames."""
    import multiprocessing
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # no LiteRT state forked
    manager = context.Manager()
    progress = manager.Queue()
    bar = progress_factory(None) if progress_factory else None
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                 initializer=_worker_init) as pool:
            pending = {pool.submit(_worker, path, estimator_options, models, tracker, o,
                                   progress): path for path, o in zip(inputs, per_bag)}
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                with contextlib.suppress(queue.Empty):
                    while True:
                        n = progress.get_nowait()
                        if bar is not None:
                            bar.update(n)
                for future in done:
                    pending.pop(future)
                    try:
                        yield future.result()
                    except BagError as exc:
                        yield exc
    finally:
        if bar is not None:
            bar.close()
        manager.shutdown()
