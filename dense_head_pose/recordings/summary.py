"""What processing a recording takes and gives: the options of a bag's run
(:class:`BagOptions`), a time chunk of it (:class:`Window`), and what happened to it
(:class:`BagSummary`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..interfaces.face_ids import id_prefix_problem
from ..pipeline.pose import CameraIntrinsics


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
    rows) to join the face ids across the border."""

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
    engagement: dict[str, str] = field(default_factory=dict)
    """Each person's last engagement level in the output bag (with ROS4HRI)."""
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
        if self.engagement:
            out.append("  engagement at the end: " + ", ".join(
                f"{person} {level}" for person, level in sorted(self.engagement.items())))
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


