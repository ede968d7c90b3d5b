"""A run's plan: each recording's name and outputs (checked before any work), its tasks (a
chunk each for a long bag), and where the run keeps its records.

Names are unique by construction: a recording is named after its input (its directory's
names before it where inputs share a name), and a name the naming already gave, or will
give, gets the first free ``-N``. Every output is checked before the first frame is read:
none is an input or inside one, none is another output (the table included), none exists
(but with ``--resume``, where what is there is the run's own and is redone when its record
does not prove it done), and every output directory exists or is made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..output_files import (
    OutputPathError,
    check_new_file,
    input_stem,
    make_directory,
    plot_path,
    refuse_inputs,
    resolved,
)
from .chunks import windows
from .inputs import BAG_SUFFIXES, VIDEO_SUFFIXES
from .state import STATE_DIR, DoneRecords, fingerprint
from .table import check_summary_path, recordings_path
from .work import Outcome, Outputs, Settings, Task


@dataclass
class Recording:
    """One input of the run and what became of it."""

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
class RunOptions:
    """What the run writes beyond each recording's own outputs, and how it runs."""

    out: Path | None = None
    csv: Path | None = None
    plot: Path | None = None
    summary: Path | None = None
    resume: bool = False
    chunk_s: float | None = None
    warmup_s: float = 5.0
    key: str = ""
    """The run's key (:func:`~.state.run_key`), for ``--resume``."""
    several: bool = False
    """Outputs are directories of one output per recording (more than one input)."""


def unique_names(inputs: Sequence[str], suffixes: tuple[str, ...] = BAG_SUFFIXES
                 ) -> list[str]:
    """A name per input, all different (see module)."""
    paths = [resolved(i) for i in inputs]
    stems = [input_stem(i, suffixes) for i in inputs]

    def name(i: int, depth: int) -> str:
        parents = paths[i].parent.parts[-depth:] if depth else ()
        return "-".join([*parents, stems[i]]).lstrip("/-") or "root"

    first = []
    for i in range(len(paths)):
        depth = 0
        while depth < len(paths[i].parts) and any(
                paths[j] != paths[i] and name(j, depth) == name(i, depth)
                for j in range(len(paths))):
            depth += 1
        first.append(name(i, depth))
    taken: set[str] = set()
    names = []
    for i, candidate in enumerate(first):
        if candidate in taken:  # the same input twice, or a name another depth gave
            later = set(first[i + 1:])
            k = 2
            while f"{candidate}-{k}" in taken or f"{candidate}-{k}" in later:
                k += 1
            candidate = f"{candidate}-{k}"
        taken.add(candidate)
        names.append(candidate)
    return names


def plan(inputs: Sequence[str], settings: Settings, options: RunOptions
         ) -> tuple[list[Recording], DoneRecords | None]:
    """Each input's name and outputs, checked before any work (``OutputPathError``: exit
    2), and the records of the run (None when it writes nothing to keep them beside)."""
    if options.summary is not None:
        check_summary_path(options.summary)
    suffixes = BAG_SUFFIXES if settings.kind == "bag" else VIDEO_SUFFIXES
    names = unique_names(inputs, suffixes)
    state = _state_dir(options)
    records = DoneRecords(state) if state is not None else None
    if options.resume and records is None:
        raise OutputPathError("--resume needs outputs to find (--out, --csv, --plot or "
                              "--summary)")
    for flag, target in (("--out", options.out), ("--csv", options.csv),
                         ("--plot", options.plot), ("--summary", options.summary)):
        if target is not None:
            refuse_inputs(flag, target, inputs)
            make_directory(flag, target if options.several and flag != "--summary"
                           else target.parent if str(target.parent) else Path("."))
    if options.summary is not None and state is not None:
        make_directory("--summary", state / "parts")
    recordings = [Recording(i, path, name, _outputs(name, settings, options, state))
                  for i, (path, name) in enumerate(zip(inputs, names))]
    _refuse_overlaps(recordings, options)
    for recording in recordings:
        if records is not None:
            recording.fingerprint = fingerprint(recording.path)
        for flag, target in zip(("--out", "--csv", "--plot"), (
                recording.outputs.out, recording.outputs.csv, recording.outputs.plot)):
            if target is not None:
                refuse_inputs(flag, target, inputs)
                if not options.resume:  # resumed: what is there is the run's own
                    check_new_file(flag, target)
    if options.summary is not None and not options.resume:
        check_new_file("--summary", options.summary)
        check_new_file("--summary", recordings_path(options.summary))
    return recordings, records


def _outputs(name: str, settings: Settings, options: RunOptions, state: Path | None
             ) -> Outputs:
    several = options.several
    out = csv = plot = part = None
    if options.out is not None:
        if not several:
            out = options.out
        elif settings.kind == "video":
            out = options.out / f"{name}_{settings.mode}.mp4"
        else:
            out = options.out / name
    if options.csv is not None:
        csv = options.csv / f"{name}.csv" if several else options.csv
    if options.plot is not None:
        plot = options.plot / f"{name}.png" if several else plot_path(options.plot)
    if options.summary is not None and state is not None:
        part = state / "parts" / f"{name}.csv"
    return Outputs(out, csv, plot, part)


def _refuse_overlaps(recordings: list[Recording], options: RunOptions) -> None:
    """No two outputs are one file, and the table is none of them (OutputPathError)."""
    seen: dict[Path, str] = {}
    table = [] if options.summary is None else [
        ("--summary", options.summary), ("--summary", recordings_path(options.summary))]
    flags = ("--out", "--csv", "--plot")
    for flag, path in [*table, *((f, p) for r in recordings
                                 for f, p in zip(flags, (r.outputs.out, r.outputs.csv,
                                                         r.outputs.plot)) if p is not None)]:
        real = resolved(path)
        if real in seen:
            raise OutputPathError(f"{flag} {path} is also {seen[real]}: every output must be "
                                  "a file of its own; give other paths")
        seen[real] = f"{flag} {path}"


def _state_dir(options: RunOptions) -> Path | None:
    """Where the run keeps its records: beside the table, else in the output directory
    (several inputs) or beside the output (one)."""
    if options.summary is not None:
        return options.summary.parent / f".{options.summary.name}.state"
    for target in (options.out, options.csv, options.plot):
        if target is not None:
            return (target if options.several else target.parent) / STATE_DIR
    return None


def split(recording: Recording, settings: Settings, options: RunOptions,
          media_s: float | None, span: tuple[int, int] | None) -> list[Task]:
    """A recording's tasks: one, or a chunk each (bags only, when ``chunk_s`` is set, the
    span known and no output bag asked for: a bag's messages carry the ids)."""
    # absolute: a worker's working directory is not the driver's
    path = recording.path if recording.path.isdigit() else os.path.abspath(recording.path)
    outputs = Outputs(*(Path(os.path.abspath(p)) if p is not None else None for p in (
        recording.outputs.out, recording.outputs.csv, recording.outputs.plot,
        recording.outputs.part)))
    whole = [Task(recording.index, recording.name, path, outputs, media_s=media_s)]
    if (settings.kind != "bag" or not options.chunk_s or span is None
            or recording.outputs.out is not None):
        return whole
    parts = windows(span[0], span[1], options.chunk_s, options.warmup_s)
    if not parts:
        return whole
    length = (span[1] - span[0]) * 1e-9 / len(parts)
    return [Task(recording.index, recording.name, path, window=w, chunk=k,
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
        from ..recordings.bag_input import open_bag
        from ..recordings.bag_types import typestore

        with open_bag(path, typestore()[0]) as bag:
            span = bag.time_span()
        return ((span[1] - span[0]) * 1e-9 if span else None), span
    except Exception:  # unreadable here: its task reports it
        return None, None
