"""What a processed recording writes, frame by frame: an output bag with the messages the
node publishes, a CSV time series, and a plot.

* the bag (rosbag2, MCAP or sqlite3): ``head_pose``, ``head_poses``, ``faces``, ``/tf`` and,
  where hri_msgs' definitions are installed, the ROS4HRI topics (``/humans/faces/tracked``,
  each face's ``roi`` and ``landmarks``), built by the node's own message builders
  (:mod:`~dense_head_pose.interfaces.messages`), stamped with the images' stamps and logged
  at the images' recording times;
* the CSV, a row per face per frame, whole rows only;
* the plot of yaw, pitch and roll against time, a line per face id, broken where the face
  was not seen.

Before each frame the outputs' disks are looked at: the run stops while closing the outputs
still fits (:data:`~.rosbag_io.FREE_SPACE_MARGIN`), not after the disk is full.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..interfaces import messages
from ..interfaces.face_ids import tf_name
from ..interfaces.tracked_union import TrackedUnion
from ..lifetime import stop_signals_held
from ..pipeline.results import Face
from .rosbag_io import (
    FREE_SPACE_MARGIN,
    BagError,
    BagOutput,
    CsvOutput,
    OutputFullError,
    free_bytes,
)

TRACKED = "/humans/faces/tracked"
CSV_COLUMNS = ("stamp", "camera", "id", "yaw_deg", "pitch_deg", "roll_deg", "x_m", "y_m",
               "z_m", "qx", "qy", "qz", "qw", "score")


def csv_stamp(nanoseconds: int) -> str:
    """A stamp in seconds, exact to the nanosecond (no float rounding; -4.5 s is
    ``-4.500000000``)."""
    sign = "-" if nanoseconds < 0 else ""
    seconds, fraction = divmod(abs(nanoseconds), 1_000_000_000)
    return f"{sign}{seconds}.{fraction:09d}"


class RecordingOutputs:
    """The output bag, the CSV and the plot's series, fed frame by frame."""

    def __init__(self, options: Any, store: Any, hri: bool,
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
        self.warming = False
        """Whether the frames now are a chunk's warm-up: their CSV rows go to
        :attr:`warmup_rows`, nothing is written."""
        self.warmup_rows: list[list[str]] = []
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

    def frame(self, camera: Any, header: Any, log_ns: int, width: int, height: int,
              faces: Sequence[Face] | None) -> None:
        """One frame's outputs, written whole (a stop signal waits for them); ``faces``
        None: an unusable image."""
        if self.warming:
            names = [tf_name(camera.ids if self.hri else None, camera.id_prefix, f.id)
                     for f in faces or []]
            self.warmup_rows += face_rows(messages.stamp_ns(header.stamp), camera.topic,
                                         faces or [], names)
            return
        self.check_space()
        with stop_signals_held():
            self._frame(camera, header, log_ns, width, height, faces)

    def _frame(self, camera: Any, header: Any, log_ns: int, width: int, height: int,
               faces: Sequence[Face] | None) -> None:
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
        for face, name in zip(faces, names):
            self.series[name].append((stamp * 1e-9, face.yaw, face.pitch, face.roll))
        rows = face_rows(stamp, camera.topic, faces, names)
        if self.csv is not None and rows:
            self.csv.rows(rows)

    def _hri(self, camera: Any, header: Any, log_ns: int, width: int, height: int,
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


def face_rows(stamp_ns: int, camera: str, faces: Sequence[Face], names: Sequence[str]
              ) -> list[list[str]]:
    """A frame's CSV rows (:data:`CSV_COLUMNS`), a face each (``names``: their ids)."""
    return [[csv_stamp(stamp_ns), camera, name, f"{face.yaw:.4f}", f"{face.pitch:.4f}",
             f"{face.roll:.4f}", *(f"{v:.6f}" for v in face.pose.translation),
             *(f"{v:.7f}" for v in face.pose.quaternion_xyzw), f"{face.score:.4f}"]
            for face, name in zip(faces, names)]


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


def pyplot() -> Any:
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
    plt = pyplot()
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
