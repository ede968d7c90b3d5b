"""The one runner of recordings, one or many: this process (the driver) plans the tasks,
hands them to a pool of workers, redoes those whose worker died, joins the chunks of a
recording, and records what is done.

Pools (:class:`Pool`): :class:`~.local_pool.InProcessPool` (this process),
:class:`~.local_pool.ProcessPool` (``--jobs`` processes of this machine) and
:class:`~.cluster.RayPool` (a Ray cluster's workers). Each takes a :class:`~.work.Task` and
gives back its :class:`~.work.Outcome`, or :data:`DIED` when the worker died under it.

Guarantees: a recording's outputs are written as it is processed and are closed whole
whatever stops it; a task whose worker died is redone from scratch (its outputs removed
first), up to :data:`MAX_ATTEMPTS` times; a recording that fails for its own reasons is
reported and the rest go on; a stop signal stops every worker after the frame in hand, with
its outputs closed; a recording is recorded as done (for ``--resume``) only after all its
outputs are whole. A pool that can no longer run anything (a cluster gone) ends the run
with what is done, the table written and a line saying why.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import DenseHeadPoseError
from ..recordings.plot import PlotError, plot_rows
from ..recordings.rows import CsvWriter, FaceRow
from .chunks import IdJoiner
from .planning import Recording, RunOptions, media_extent, plan, split
from .state import DoneRecords
from .status import finished_status, interrupted_status
from .table import PART_COLUMNS, part_cells, write_summary
from .work import Outcome, Settings, Task

LOG = logging.getLogger("dense_head_pose.dataset")
#: Attempts of a task whose worker keeps dying, before its recording is reported failed.
MAX_ATTEMPTS = 3
DIED = "died"


class PoolError(DenseHeadPoseError):
    """The pool can run nothing more (a cluster gone): the run ends with what is done."""


class Pool(Protocol):
    """Workers that each hold a loaded estimator."""

    capacity: int

    def submit(self, task: Task) -> None: ...

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        """A finished task with its outcome (or :data:`DIED`); None if none within
        ``timeout`` seconds; :class:`PoolError` when nothing can run any more."""

    def progress(self) -> float:
        """Media seconds the workers reported since the last call."""

    def stop(self) -> list[tuple[Task, Outcome | str]]:
        """Stop every worker after the frame in hand (outputs closed); the tasks in flight
        with what became of them."""


class Driver:
    """Runs a plan's recordings on a pool (see the module docstring)."""

    def __init__(self, recordings: list[Recording], records: DoneRecords | None,
                 settings: Settings, options: RunOptions, pool: Callable[[], Pool],
                 bar: Any = None) -> None:
        self.recordings = recordings
        self.records = records
        self.settings = settings
        self.options = options
        self._make_pool = pool
        self.pool: Pool | None = None
        self.bar = bar
        self.in_flight: dict[tuple[int, int], Task] = {}

    def run(self) -> Iterator[dict[str, Any]]:
        """Each recording's status as it completes (skipped ones first); then the table."""
        queue: deque[Task] = deque()
        total = 0.0
        for recording in self.recordings:
            if self._done_before(recording):
                yield recording.status  # type: ignore[misc]
                continue
            media_s, span = media_extent(recording.path, self.settings.kind)
            recording.tasks = split(recording, self.settings, self.options, media_s, span)
            total += media_s or 0.0
            queue.extend(recording.tasks)
        if self.bar is not None:
            self.bar.total = round(total, 1)
        try:
            if queue:
                self.pool = self._make_pool()
                yield from self._loop(queue)
        except PoolError as exc:
            LOG.error("%s", exc)
            self._write_summary()
            raise
        except BaseException:
            self._stop()
            raise
        self._write_summary()

    def _done_before(self, recording: Recording) -> bool:
        """``--resume``: whether the records prove ``recording`` done (its status is then
        set); otherwise its old record and outputs go, to be made again."""
        records, outputs = self.records, recording.outputs.paths()
        if records is None:
            return False
        if self.options.resume and records.is_done(recording.name, recording.fingerprint,
                                                   self.options.key, outputs):
            old = records.record(recording.name) or {}
            status = old.get("status")
            recording.status = {**(status if isinstance(status, dict) else {}),
                                "recording": recording.name, "path": recording.path,
                                "status": "skipped"}
            return True
        records.forget(recording.name)
        if recording.outputs.part is not None:
            _remove(recording.outputs.part)  # the run's own, hidden: always made again
        if self.options.resume:
            for output in outputs:  # what a stopped or killed run left: made again
                _remove(output)
        return False

    def _loop(self, queue: deque[Task]) -> Iterator[dict[str, Any]]:
        """Until every task is done."""
        assert self.pool is not None
        by_index = {r.index: r for r in self.recordings}
        while queue or self.in_flight:
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
                outcome = self._died(task, recording, queue)
                if outcome is None:
                    continue
            assert isinstance(outcome, Outcome)
            recording.outcomes[task.chunk] = outcome
            if outcome.error is not None and task.chunks > 1:
                # one failed chunk fails the recording: the others are not waited for
                queue = deque(t for t in queue if t.index != task.index)
                for key in [k for k in self.in_flight if k[0] == recording.index]:
                    self.in_flight.pop(key)
            if outcome.error is not None or len(recording.outcomes) == len(recording.tasks):
                yield self._finish(recording)
        self._progress()

    def _died(self, task: Task, recording: Recording, queue: deque[Task]) -> Outcome | None:
        """A task whose worker died: again (its outputs removed), or its recording failed."""
        for output in task.outputs.paths():
            _remove(output)
        recording.attempts += 1
        if task.attempt + 1 < MAX_ATTEMPTS:
            LOG.warning("%s: its worker died; doing it again (attempt %d of %d)",
                        _label(task), task.attempt + 2, MAX_ATTEMPTS)
            queue.appendleft(replace(task, attempt=task.attempt + 1))
            return None
        return Outcome(task, error=f"its worker died {MAX_ATTEMPTS} times (killed, out of "
                                   "memory, or a native crash)")

    def _progress(self) -> None:
        seconds = self.pool.progress() if self.pool is not None else 0.0
        if self.bar is not None and seconds:
            self.bar.update(round(seconds, 1))

    def _finish(self, recording: Recording) -> dict[str, Any]:
        outcomes = [recording.outcomes[k] for k in sorted(recording.outcomes)]
        rows: list[FaceRow] = []
        chunk_of: list[int] = []
        if len(recording.tasks) > 1 and all(o.error is None for o in outcomes):
            joiner = IdJoiner()
            for k, outcome in enumerate(outcomes):
                joined = joiner.join(outcome.rows, outcome.warmup_rows)
                rows += joined
                chunk_of += [k] * len(joined)
            try:
                self._write_joined(recording, rows, chunk_of)
            except (OSError, DenseHeadPoseError) as exc:
                outcomes[-1].error = f"cannot write its outputs: {exc}"
        recording.status = finished_status(recording, outcomes, rows)
        if self.records is not None and recording.status["status"] == "done":
            self.records.write(recording.name, recording.fingerprint, self.options.key,
                               recording.outputs.paths(), recording.status)
        return recording.status

    def _write_joined(self, recording: Recording, rows: list[FaceRow],
                      chunk_of: list[int]) -> None:
        """A chunked recording's outputs, from its chunks' rows joined."""
        outputs = recording.outputs
        if outputs.csv is not None:
            csv = CsvWriter(outputs.csv)
            try:
                csv.rows(rows)
            finally:
                csv.close()
        if outputs.plot is not None:
            try:
                plot_rows(rows, outputs.plot, title=Path(recording.path).name)
            except PlotError as exc:
                raise OSError(str(exc)) from None
        if outputs.part is not None:
            outputs.part.parent.mkdir(parents=True, exist_ok=True)
            part = CsvWriter(outputs.part, PART_COLUMNS)
            try:
                for k in sorted(set(chunk_of)):
                    part.cells(part_cells(k, [r for r, c in zip(rows, chunk_of) if c == k]))
            finally:
                part.close()

    def _stop(self) -> None:
        """A stop signal: every worker stops after its frame in hand, outputs closed."""
        if self.pool is None:
            return
        by_index = {r.index: r for r in self.recordings}
        for task, outcome in self.pool.stop():
            recording = by_index[task.index]
            if recording.status is None:
                recording.status = interrupted_status(recording, outcome)
                if task.chunks > 1:  # a chunked recording's outputs are never partial
                    for output in recording.outputs.paths():
                        _remove(output)

    def _write_summary(self) -> None:
        if self.options.summary is None:
            return
        parts = []
        for recording in self.recordings:
            part = recording.outputs.part
            ok = recording.status is not None and recording.status.get("status") in (
                "done", "skipped") and part is not None and part.exists()
            parts.append((recording.name, part if ok else None))
        write_summary(self.options.summary, parts,
                      [r.status or {"recording": r.name, "path": r.path,
                                    "status": "not run"} for r in self.recordings])


def _remove(path: Path) -> None:
    """An output (a file, or a bag directory) and what a killed write left beside it."""
    import shutil

    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _label(task: Task) -> str:
    return task.path if task.chunks == 1 else f"{task.path} (chunk {task.chunk + 1} of " \
                                               f"{task.chunks})"


def run_recordings(inputs: Sequence[str], settings: Settings, options: RunOptions,
                   pool_factory: Callable[[], Pool],
                   progress_factory: Callable[..., Any] | None) -> Iterator[dict[str, Any]]:
    """Plan, check the outputs, run (the pool started only when there is work: its
    workers load the model before any work); each recording's status as it completes."""
    recordings, records = plan(inputs, settings, options)
    bar = progress_factory(None, unit="s") if progress_factory else None
    driver = Driver(recordings, records, settings, options, pool_factory, bar)
    try:
        yield from driver.run()
    finally:
        if bar is not None:
            bar.close()
        if driver.pool is not None:
            with contextlib.suppress(Exception):
                driver.pool.stop()
