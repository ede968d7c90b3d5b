"""Workers on this machine: this process (:class:`InProcessPool`) or ``jobs`` processes
(:class:`ProcessPool`), each loading the model pack once.

In this process a task runs in the driver's own thread, under the command's signal
handlers: a stop raises where the task is and its outputs are closed on the way out, as
``dense-head-pose bag`` of one recording always did. A worker process only records a stop
(:class:`~dense_head_pose.lifetime.StopFlag`) and acts on it after the frame in hand; it
gets a signal when the driver dies (:func:`~dense_head_pose.lifetime.die_with_parent`;
SIGUSR1, told apart from the driver's SIGTERM), so a driver killed outright leaves no
worker behind: one in a task closes its outputs after the frame in hand and exits, an idle
one exits at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..lifetime import Interrupted, StopFlag, die_with_parent, stop_signals_held
from .work import Outcome, Settings, Task, perform

#: How long a stopped worker is given to close its outputs before it is killed.
STOP_GRACE_S = 60.0
Emit = Callable[[Any, Any], None]

_ESTIMATOR: Any = None
_QUEUE: Any = None
_STOP = StopFlag()
_RUNNING = False
#: The signal a worker gets when the driver dies.
ORPHANED = signal.SIGUSR1


def _exit_if_idle(signum: int) -> None:
    if not _RUNNING:
        os._exit(128 + signum)  # waiting for work that will never come


_DRIVER_GONE = StopFlag(on_stop=_exit_if_idle)


class InProcessPool:
    """Tasks done one at a time in this process (``--jobs 1``); ``emit`` gets every frame's
    result (JSON lines)."""

    def __init__(self, models: str | None, estimator_options: Any, settings: Settings,
                 emit: Emit | None = None) -> None:
        from ..pipeline.estimator import HeadPoseEstimator

        self.settings = settings
        self.capacity = 1
        self.emit = emit
        self._estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
        self._pending: deque[Task] = deque()
        self._reported = 0.0
        self._current: Task | None = None

    def submit(self, task: Task) -> None:
        self._pending.append(task)

    def _report(self, seconds: float) -> None:
        self._reported += seconds

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        if not self._pending:
            return None
        task = self._current = self._pending.popleft()
        outcome = perform(task, self.settings, self._estimator, self._report, self.emit)
        self._current = None
        return task, outcome

    def progress(self) -> float:
        seconds, self._reported = self._reported, 0.0
        return seconds

    def stop(self) -> list[tuple[Task, Outcome | str]]:
        """The task in hand has already stopped: the stop was raised through it."""
        stopped = [(self._current, "stopped")] if self._current is not None else []
        self._current = None
        self._pending.clear()
        return stopped  # type: ignore[return-value]


def _worker_init(models: str | None, estimator_options: Any, progress: Any,
                 parent: int) -> None:
    """In a worker process: record stops, die with the driver, load the model once."""
    from ..pipeline.estimator import HeadPoseEstimator

    global _ESTIMATOR, _QUEUE
    _STOP.install()
    _DRIVER_GONE.install((ORPHANED,))
    if not die_with_parent(parent, ORPHANED):
        os._exit(0)
    _ESTIMATOR = HeadPoseEstimator.from_model_dir(models, estimator_options)
    _QUEUE = progress


def _checkpoint() -> None:
    _DRIVER_GONE.check()
    _STOP.check()


def _worker_run(task: Task, settings: Settings) -> Outcome:
    """One task in a worker process; a stop (or the driver's death) ends it after the frame
    in hand, its outputs closed."""
    global _RUNNING
    _RUNNING = True
    try:
        _checkpoint()
        return perform(task, settings, _ESTIMATOR,
                       _QUEUE.put if _QUEUE is not None else None, checkpoint=_checkpoint)
    except (KeyboardInterrupt, Interrupted):
        if _DRIVER_GONE.signum is not None:
            os._exit(128 + signal.SIGTERM)  # nobody to answer to
        return Outcome(task, interrupted=True)
    finally:
        _RUNNING = False


class ProcessPool:
    """``jobs`` worker processes, one task each at a time."""

    def __init__(self, models: str | None, estimator_options: Any, settings: Settings,
                 jobs: int) -> None:
        from ..pipeline.estimator import HeadPoseEstimator

        HeadPoseEstimator.from_model_dir(models, estimator_options)  # its errors, here
        self.settings = settings
        self.capacity = jobs
        self._args = (models, estimator_options)
        self._futures: dict[Any, Task] = {}
        self._done: deque[tuple[Task, Outcome | str]] = deque()
        self._executor: Any = None
        self._start()

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no LiteRT state forked
        self._queue = context.Queue()
        self._executor = ProcessPoolExecutor(
            self.capacity, mp_context=context, initializer=_worker_init,
            initargs=(*self._args, self._queue, os.getpid()))

    def submit(self, task: Task) -> None:
        with stop_signals_held():  # never inside the executor's own locks (lifetime)
            self._futures[self._executor.submit(_worker_run, task, self.settings)] = task

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        from .driver import DIED

        if self._done:
            return self._done.popleft()
        if not self._futures:
            return None
        with stop_signals_held():
            done, _ = wait(self._futures, timeout=timeout, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            task = self._futures.pop(future)
            try:
                self._done.append((task, future.result()))
            except BrokenProcessPool:
                self._done.append((task, DIED))
                broken = True
        if broken:  # the pool is gone: every task in it died with it
            self._done.extend((t, DIED) for t in self._futures.values())
            self._futures.clear()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._start()
        return self._done.popleft() if self._done else None

    def progress(self) -> float:
        import queue

        seconds = 0.0
        with stop_signals_held(), contextlib.suppress(queue.Empty, OSError, ValueError):
            while True:
                seconds += self._queue.get_nowait()
        return seconds

    def stop(self) -> list[tuple[Task, Outcome | str]]:
        """SIGTERM to every worker: each closes its outputs after the frame in hand and
        takes no further task; killed if it has not within :data:`STOP_GRACE_S`."""
        from concurrent.futures import wait

        if self._executor is None:
            return []
        processes = list(getattr(self._executor, "_processes", {}).values())
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                os.kill(process.pid, signal.SIGTERM)
        with stop_signals_held():
            done, pending = wait(self._futures, timeout=STOP_GRACE_S)
        stopped: list[tuple[Task, Outcome | str]] = []
        for future, task in self._futures.items():
            outcome: Outcome | str = "stopped"
            if future in done:
                with contextlib.suppress(BaseException):
                    outcome = future.result()
            stopped.append((task, outcome))
        for process in processes if pending else []:
            with contextlib.suppress(OSError, ValueError):
                os.kill(process.pid, signal.SIGKILL)
        self._futures.clear()
        with stop_signals_held():
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None
        deadline = time.monotonic() + 5.0
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        return stopped
