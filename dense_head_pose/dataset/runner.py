"""A dataset of recordings processed on a pool of workers: this process (the driver) plans
the tasks, hands them out, redoes those whose worker died, joins the chunks of a recording,
and writes what each recording gives (its CSV, plot, record of completion, table part).

Pools: :class:`~.local_pool.LocalPool` (this process, or ``jobs`` processes of this machine) and
:class:`~.cluster.RayPool` (a Ray cluster's workers). Both take a :class:`~.work.Task` and
give back its :class:`~.work.Outcome`, or :data:`DIED` when the worker died under it.

Guarantees: every output is written under a temporary name and renamed when whole; a task
whose worker died is redone (up to :data:`MAX_ATTEMPTS` times) with no duplicate and no
missing row; a recording that fails for its own reasons is reported and the rest go on;
an interrupted run leaves only whole outputs; a recording is recorded as done (for
``--resume``) only after all its outputs are in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ..lifetime import stop_signals_held
from .chunks import IdJoiner
from .planning import DatasetOptions, Recording, media_extent, plan, split
from .state import DoneRecords
from .table import part_text, write_summary
from .work import (
    PARTIAL,
    Outcome,
    Settings,
    Task,
    csv_header,
    csv_rows,
    csv_text,
    partial_path,
    put_in_place,
    remove,
)

LOG = logging.getLogger("dense_head_pose.dataset")
#: Attempts of a task whose worker keeps dying, before its recording is reported failed.
MAX_ATTEMPTS = 3
DIED = "died"

class Pool(Protocol):
    """Workers that each hold a loaded estimator."""

    capacity: int

    def submit(self, task: Task) -> None: ...

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        """A finished task with its outcome (or :data:`DIED`); None if none within
        ``timeout`` seconds."""

    def progress(self) -> float:
        """Media seconds the workers reported since the last call."""

    def stop(self) -> None:
        """Stop every worker now (their tasks' temporary outputs are the driver's to
        remove)."""



class Driver:
    """Runs a dataset's recordings on a pool (see the module docstring)."""

    def __init__(self, recordings: list[Recording], records: DoneRecords | None,
                 settings: Settings, options: DatasetOptions, pool: Pool,
                 bar: Any = None) -> None:
        self.recordings = recordings
        self.records = records
        self.settings = settings
        self.options = options
        self.pool = pool
        self.bar = bar
        self.parts = (records.directory / "parts") if (
            records is not None and options.summary is not None) else None
        self.in_flight: dict[tuple[int, int], Task] = {}

    def run(self) -> Iterator[dict[str, Any]]:
        """Each recording's status as it completes (skipped ones first); then the table."""
        queue: deque[Task] = deque()
        total = 0.0
        for recording in self.recordings:
            if self.options.resume and self.records is not None and self.records.is_done(
                    recording.name, recording.fingerprint, self.options.key):
                old = self.records.record(recording.name) or {}
                recording.status = {**old.get("status", {}), "status": "skipped"}
                yield recording.status
                continue
            if self.records is not None:
                self.records.forget(recording.name)
            for output in recording.outputs.paths():  # a killed run's temporary files
                _remove_partials(output)
            media_s, span = media_extent(recording.path, self.settings.kind)
            recording.tasks = split(recording, self.settings, self.options, media_s, span)
            total += media_s or 0.0
            queue.extend(recording.tasks)
        if self.bar is not None:
            self.bar.total = round(total, 1)
        try:
            # a stop signal is acted on between two waits on the pool, never inside the
            # executor's or Ray's own locks (see stop_signals_held)
            with stop_signals_held() as came:
                yield from self._loop(queue, came)
        except BaseException:
            self.pool.stop()
            for task in self.in_flight.values():
                self._remove_partials(task)
            raise
        if self.options.summary is not None:
            self._write_summary()

    def _loop(self, queue: deque[Task], stop: list[int]) -> Iterator[dict[str, Any]]:
        """Until every task is done, or a stop signal came (``stop`` not empty)."""
        by_index = {r.index: r for r in self.recordings}
        while (queue or self.in_flight) and not stop:
            while queue and len(self.in_flight) < self.pool.capacity:
                task = queue.popleft()
                self.in_flight[task.index, task.chunk] = task
                self.pool.submit(task)
            done = self.pool.next_done(0.5)
            self._progress()
            if done is None:
                continue
            task, outcome = done
            recording = by_index[task.index]
            if self.in_flight.pop((task.index, task.chunk), None) is None or \
                    recording.status is not None:
                continue  # a chunk of a recording that already failed
            if outcome == DIED:
                self._remove_partials(task)
                recording.attempts += 1
                if task.attempt + 1 < MAX_ATTEMPTS:
                    LOG.warning("%s: its worker died; doing it again (attempt %d of %d)",
                                _label(task), task.attempt + 2, MAX_ATTEMPTS)
                    queue.appendleft(replace(task, attempt=task.attempt + 1))
                    continue
                outcome = Outcome(task, error=f"its worker died {MAX_ATTEMPTS} times "
                                              f"(killed, out of memory, or a native crash)")
            assert isinstance(outcome, Outcome)
            recording.outcomes[task.chunk] = outcome
            if outcome.error is not None and task.chunks > 1:
                # one failed chunk fails the recording: the others are not waited for
                queue = deque(t for t in queue if t.index != task.index)
            if outcome.error is not None or len(recording.outcomes) == len(recording.tasks):
                if outcome.error is not None:
                    self._abandon(recording)
                yield self._finish(recording)
        self._progress()

    def _abandon(self, recording: Recording) -> None:
        """A recording failed: its other chunks in flight are left to finish unheard."""
        for key in [k for k in self.in_flight if k[0] == recording.index]:
            self.in_flight.pop(key)

    def _progress(self) -> None:
        seconds = self.pool.progress()
        if self.bar is not None and seconds:
            self.bar.update(round(seconds, 1))

    def _remove_partials(self, task: Task) -> None:
        if task.out:
            _remove_partials(Path(task.out))

    def _finish(self, recording: Recording) -> dict[str, Any]:
        outcomes = [recording.outcomes[k] for k in sorted(recording.outcomes)]
        failed = next((o for o in outcomes if o.error is not None), None)
        status: dict[str, Any] = {
            "recording": recording.name, "path": recording.path,
            "frames": sum(o.frames for o in outcomes), "faces": sum(o.faces for o in outcomes),
            "media_s": round(sum(o.media_s for o in outcomes), 3),
            "wall_s": round(sum(o.wall_s for o in outcomes), 3),
            "cpu_s": round(sum(o.cpu_s for o in outcomes), 3),
            "chunks": len(recording.tasks), "attempts": 1 + recording.attempts,
            "nodes": ",".join(sorted({o.node for o in outcomes if o.node})),
            "problems": [p for o in outcomes for p in o.problems]}
        if failed is not None:
            recording.status = {**status, "status": "failed", "error": failed.error,
                                "face_ids": 0}
            return recording.status
        joiner = IdJoiner()
        rows: list[list[str]] = []
        chunk_of: list[int] = []
        for k, outcome in enumerate(outcomes):
            joined = joiner.join(outcome.rows, outcome.warmup_rows) if len(outcomes) > 1 \
                else csv_rows(outcome.rows)
            rows += joined
            chunk_of += [k] * len(joined)
        status["face_ids"] = len({(r[1], r[2]) for r in rows})
        try:
            self._write_outputs(recording, rows, chunk_of)
        except OSError as exc:
            recording.status = {**status, "status": "failed",
                                "error": f"cannot write its outputs: {exc}"}
            return recording.status
        recording.status = {**status, "status": "done", "error": None}
        if self.records is not None:
            self.records.write(recording.name, recording.fingerprint, self.options.key,
                               recording.outputs.paths(), recording.status)
        return recording.status

    def _write_outputs(self, recording: Recording, rows: list[list[str]],
                       chunk_of: list[int]) -> None:
        outputs = recording.outputs
        if outputs.csv is not None:
            partial = partial_path(outputs.csv)
            try:
                partial.write_text(csv_header() + csv_text(rows))
                put_in_place(partial, outputs.csv)
            finally:
                remove(partial if partial.exists() else None)
        if outputs.plot is not None:
            from ..recordings.outputs import plot_series

            series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
            for r in rows:
                series[r[2]].append((float(r[0]), float(r[3]), float(r[4]), float(r[5])))
            partial = partial_path(outputs.plot)
            try:
                plot_series(series, partial, title=Path(recording.path).name)
                put_in_place(partial, outputs.plot)
            finally:
                remove(partial if partial.exists() else None)
        if self.parts is not None:
            self.parts.mkdir(parents=True, exist_ok=True)
            part = self.parts / f"{recording.name}.csv"
            partial = part.with_name(f".{part.name}.partial")
            with open(partial, "w", newline="") as file:
                for start in range(0, len(rows), 10_000):
                    block = range(start, min(len(rows), start + 10_000))
                    for k in sorted({chunk_of[i] for i in block}):
                        file.write(part_text(k, [rows[i] for i in block if chunk_of[i] == k]))
            os.replace(partial, part)

    def _write_summary(self) -> None:
        assert self.options.summary is not None and self.parts is not None
        parts = []
        for recording in self.recordings:
            part = self.parts / f"{recording.name}.csv"
            ok = recording.status is not None and recording.status.get("status") in (
                "done", "skipped") and part.exists()
            parts.append((recording.name, part if ok else None))
        write_summary(self.options.summary, parts,
                      [r.status or {"recording": r.name, "path": r.path,
                                    "status": "not run"} for r in self.recordings])


def _remove_partials(final: Path) -> None:
    """The temporary files of ``final`` left by a worker or driver that died."""
    with contextlib.suppress(OSError):
        for leftover in final.parent.glob(f".{final.stem}{PARTIAL}*"):
            remove(leftover)


def _label(task: Task) -> str:
    return task.path if task.chunks == 1 else f"{task.path} (chunk {task.chunk + 1} of " \
                                               f"{task.chunks})"


def run_dataset(inputs: Sequence[str], settings: Settings, options: DatasetOptions,
                pool_factory: Callable[[], Pool], progress_factory: Callable[..., Any] | None
                ) -> Iterator[dict[str, Any]]:
    """Plan, check the outputs, start the pool (models loaded on every worker before any
    work), run; each recording's status as it completes."""
    recordings, records = plan(inputs, settings, options)
    pool = pool_factory()
    bar = progress_factory(None, unit="s") if progress_factory else None
    try:
        yield from Driver(recordings, records, settings, options, pool, bar).run()
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(Exception):
            pool.stop()


def status_lines(status: dict[str, Any]) -> list[str]:
    """A recording's status as log lines."""
    if status.get("status") == "failed":
        return [f"{status['path']}: not processed: {status.get('error')}"]
    word = "skipped (done before, --resume)" if status.get("status") == "skipped" else "done"
    lines = [f"{status.get('path')}: {word}: {status.get('frames', 0)} frame(s), "
             f"{status.get('faces', 0)} face(s), {status.get('face_ids', 0)} face id(s), "
             f"{status.get('media_s', 0):.1f} s of media"
             + (f" in {status.get('chunks')} chunks" if (status.get("chunks") or 1) > 1
                else "")]
    lines += [f"  {p}" for p in status.get("problems", [])]
    return lines

