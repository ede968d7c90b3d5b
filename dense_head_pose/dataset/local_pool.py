"""The dataset's workers on this machine: this process (``jobs`` 1) or ``jobs`` processes,
each loading the model pack once."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from typing import Any

from .work import Outcome, Settings, Task

_ESTIMATOR: Any = None
_QUEUE: Any = None


def _local_init(models: str | None, estimator_options: Any, progress: Any) -> None:
    import signal

    from ..pipeline.estimator import HeadPoseEstimator

    global _ESTIMATOR, _QUEUE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops the pool
    _ESTIMATOR = HeadPoseEstimator.from_model_dir(models, estimator_options)
    _QUEUE = progress


def _local_run(task: Task, settings: Settings) -> Outcome:
    from .work import perform

    return perform(task, settings, _ESTIMATOR, _QUEUE.put if _QUEUE is not None else None)


class LocalPool:
    """This process (``jobs`` 1), or ``jobs`` processes of this machine."""

    def __init__(self, models: str | None, estimator_options: Any, settings: Settings,
                 jobs: int = 1) -> None:
        from ..pipeline.estimator import HeadPoseEstimator

        self.settings = settings
        self.capacity = max(1, jobs)
        self._models, self._options = models, estimator_options
        self._done: deque[tuple[Task, Outcome | str]] = deque()
        self._reported = 0.0
        self._executor: Any = None
        self._futures: dict[Any, Task] = {}
        if self.capacity == 1:
            self._estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
        else:
            HeadPoseEstimator.from_model_dir(models, estimator_options)  # errors now
            self._start()

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._executor = ProcessPoolExecutor(self.capacity, mp_context=context,
                                             initializer=_local_init,
                                             initargs=(self._models, self._options,
                                                       self._queue))

    def submit(self, task: Task) -> None:
        if self._executor is None:
            from .work import perform

            def report(seconds: float) -> None:
                self._reported += seconds

            self._done.append((task, perform(task, self.settings, self._estimator, report)))
            return
        self._futures[self._executor.submit(_local_run, task, self.settings)] = task

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        from .runner import DIED

        if self._done:
            return self._done.popleft()
        if not self._futures:
            return None
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

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
        seconds, self._reported = self._reported, 0.0
        if self._executor is not None:
            import queue

            with contextlib.suppress(queue.Empty, OSError, ValueError):
                while True:
                    seconds += self._queue.get_nowait()
        return seconds

    def stop(self) -> None:
        if self._executor is not None:
            import signal

            for process in list(getattr(self._executor, "_processes", {}).values()):
                with contextlib.suppress(OSError, ValueError):
                    os.kill(process.pid, signal.SIGKILL)
            self._executor.shutdown(wait=True, cancel_futures=True)
