"""A dataset's plan: each recording's outputs (checked before any work), its tasks (a
chunk each for a long bag), and where the run keeps its records."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..output_files import (
    OutputPathError,
    check_new_file,
    make_directory,
    plot_path,
    refuse_inputs,
)
from ..recordings.batch import unique_names
from .chunks import windows
from .inputs import VIDEO_SUFFIXES
from .state import STATE_DIR, DoneRecords, fingerprint
from .table import check_summary_path, recordings_path
from .work import Outcome, Settings, Task


@dataclass
class Outputs:
    """Where a recording's outputs land."""

    out: Path | None = None
    csv: Path | None = None
    plot: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.out, self.csv, self.plot) if p is not None]


@dataclass
class Recording:
    """One input of the dataset and what became of it."""

    index: int
    path: str
    name: str
    outputs: Outputs
    fingerprint: dict | None = None
    tasks: list[Task] = field(default_factory=list)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    attempts: int = 0
    status: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetOptions:
    """How the dataset is run and what it writes, beyond each recording's own outputs."""

    out: Path | None = None
    csv: Path | None = None
    plot: Path | None = None
    summary: Path | None = None
    resume: bool = False
    chunk_s: float | None = None
    warmup_s: float = 5.0
    key: str = ""
    """The run's key (:func:`~.state.run_key`), for ``--resume``."""


def plan(inputs: Sequence[str], settings: Settings, options: DatasetOptions
         ) -> tuple[list[Recording], DoneRecords | None]:
    """Each input's outputs, checked before any work (``OutputPathError``: exit 2), and
    the state directory of the run's records."""
    if options.summary is not None:
        check_summary_path(options.summary)
        refuse_inputs("--summary", options.summary, inputs)
        refuse_inputs("--summary", recordings_path(options.summary), inputs)
    suffixes = (".mcap", ".db3", ".bag") if settings.kind == "bag" else VIDEO_SUFFIXES
    names = unique_names(inputs, suffixes)
    several = len(inputs) > 1
    for flag, target in (("--out", options.out), ("--csv", options.csv),
                         ("--plot", options.plot)):
        if target is not None:
            refuse_inputs(flag, target, inputs)
            if several:
                make_directory(flag, target)
    recordings = []
    for index, (path, name) in enumerate(zip(inputs, names)):
        outputs = Outputs()
        if options.out is not None:
            if settings.kind == "video":
                outputs.out = (options.out / f"{name}_{settings.mode}.mp4" if several
                               else options.out)
            else:
                outputs.out = options.out / name if several else options.out
        if options.csv is not None:
            outputs.csv = options.csv / f"{name}.csv" if several else options.csv
        if options.plot is not None:
            outputs.plot = options.plot / f"{name}.png" if several else plot_path(options.plot)
        recordings.append(Recording(index, path, name, outputs))
    state = _state_dir(options, several)
    records = DoneRecords(state) if state is not None else None
    if options.resume and records is None:
        raise OutputPathError("--resume needs outputs to find (--out, --csv, --plot or "
                              "--summary)")
    for recording in recordings:
        if records is not None:
            recording.fingerprint = fingerprint(recording.path)
        done = (options.resume and records is not None and records.is_done(
            recording.name, recording.fingerprint, options.key))
        if done:
            continue
        for flag, target in zip(("--out", "--csv", "--plot"), (
                recording.outputs.out, recording.outputs.csv, recording.outputs.plot)):
            if target is not None:
                refuse_inputs(flag, target, inputs)
                if not options.resume:  # resumed: what is there is ours, redone
                    check_new_file(flag, target)
    if options.summary is not None and not options.resume:
        check_new_file("--summary", options.summary)
        check_new_file("--summary", recordings_path(options.summary))
    return recordings, records


def _state_dir(options: DatasetOptions, several: bool) -> Path | None:
    if options.summary is not None:
        return options.summary.parent / f".{options.summary.name}.state"
    for target in (options.out, options.csv, options.plot):
        if target is not None:
            return (target if several else target.parent) / STATE_DIR
    return None


def split(recording: Recording, settings: Settings, options: DatasetOptions,
          media_s: float | None, span: tuple[int, int] | None) -> list[Task]:
    """A recording's tasks: one, or a chunk each (bags only, when ``chunk_s`` is set, the
    span known and no output bag asked for: a bag's messages carry the ids)."""
    # absolute: a worker's working directory is not the driver's
    path = os.path.abspath(recording.path)
    out = os.path.abspath(recording.outputs.out) if recording.outputs.out else None
    whole = [Task(recording.index, recording.name, path, out, media_s=media_s)]
    if (settings.kind != "bag" or not options.chunk_s or span is None
            or recording.outputs.out is not None):
        return whole
    parts = windows(span[0], span[1], options.chunk_s, options.warmup_s)
    if not parts:
        return whole
    length = (span[1] - span[0]) * 1e-9 / len(parts)
    return [Task(recording.index, recording.name, path, None, window=w, chunk=k,
                 chunks=len(parts), media_s=length) for k, w in enumerate(parts)]


def media_extent(path: str, kind: str) -> tuple[float | None, tuple[int, int] | None]:
    """Seconds of media in a recording and, for an indexed bag, its span of log times;
    (None, None) when not known without reading it (its task will say why)."""
    try:
        if kind == "video":
            import cv2

            capture = cv2.VideoCapture(path)
            try:
                frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
                fps = capture.get(cv2.CAP_PROP_FPS)
            finally:
                capture.release()
            return (frames / fps if frames > 0 and fps > 0 else None), None
        from ..recordings.rosbag_io import open_bag, typestore

        with open_bag(path, typestore()[0]) as bag:
            span = bag.time_span()
        return ((span[1] - span[0]) * 1e-9 if span else None), span
    except Exception:  # unreadable here: its task reports it
        return None, None
