"""The pool of :class:`~.cluster.RecordingWorker` actors on a Ray cluster (what can go wrong
and what the driver does: :mod:`.cluster`)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import deque
from typing import Any

from ..errors import ModelError
from ..lifetime import skip_finalisation, stop_signals_held
from .cluster import (
    DEFAULT_TIMEOUT_S,
    HEAD_LOST_S,
    LOG,
    READY_TIMEOUT_S,
    REPLACE_TIMEOUT_S,
    STARTUP_GRACE_S,
    STOP_GRACE_S,
    ClusterError,
    ProgressCounter,
    RecordingWorker,
    connect,
    host_port,
)
from .driver import DIED, PoolError
from .work import Outcome, Settings, Task


class RayPool:
    """A worker per CPU of the cluster (or ``workers``), ready before any work starts."""

    def __init__(self, address: str, models: str | None, estimator_options: Any,
                 settings: Settings, workers: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.address = address
        self.ray = ray = connect(address, timeout)
        if models is not None:
            models = os.path.abspath(models)  # the workers' working directory is not ours
        self._args = (models, estimator_options, settings)
        self._worker = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)(
            RecordingWorker)
        self._counter = ray.remote(num_cpus=0)(ProgressCounter).remote()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._idle: deque[Any] = deque()
        self._running: dict[Any, tuple[Any, Task]] = {}
        self._starting: dict[Any, tuple[Any, float]] = {}  # ready ref -> (actor, deadline)
        self._last_progress = 0.0
        self._head = host_port(address)
        self._head_seen = time.monotonic()
        self._head_checked = 0.0
        self._stopped = False
        self._start([self._worker.remote(*self._args, self._counter)
                     for _ in range(max(1, workers or cpus))])
        self.capacity = len(self._idle)

    def _start(self, actors: list[Any]) -> None:
        """Wait for the workers to load the model pack: all of them, or, once one is ready,
        those ready within :data:`STARTUP_GRACE_S` more (a node that left meanwhile)."""
        refs = {a.ready.remote(): a for a in actors}
        deadline = time.monotonic() + READY_TIMEOUT_S
        answers: list[tuple[Any, tuple[str, str | None, int]]] = []
        while refs and time.monotonic() < deadline:
            with stop_signals_held():
                ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=1.0)
            for ref in ready:
                actor = refs.pop(ref)
                try:
                    answers.append((actor, self.ray.get(ref)))
                except Exception as exc:
                    LOG.warning("a worker could not start (%s)", " ".join(str(exc).split())[:200])
                if answers and len(answers) == 1:
                    deadline = min(deadline, time.monotonic() + STARTUP_GRACE_S)
        self._kill(list(refs.values()))
        for actor, (node, problem, _) in answers:
            if problem is not None:
                self._kill([a for a, _ in answers])
                raise ModelError(f"worker on node {node} cannot load the model pack: "
                                 f"{problem}")
            self._idle.append(actor)
        if not self._idle:
            raise ClusterError(f"--ray {self.address}: no worker could start")
        if refs:
            LOG.warning("%d worker(s) did not start in time: going on with %d",
                        len(refs), len(self._idle))
        self.pids = [pid for _, (_, _, pid) in answers]

    def _kill(self, actors: Any) -> None:
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)

    def submit(self, task: Task) -> None:
        actor = self._idle.popleft()
        with stop_signals_held():
            self._running[actor.run.remote(task)] = (actor, task)

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        self._check_head()
        self._check_starting()
        if not self._running:
            if not self._idle and not self._starting:
                raise PoolError(f"no worker is left on the cluster at {self.address}: the "
                                "recordings not done are not run (--resume does them later)")
            time.sleep(min(timeout, 0.5))
            return None
        with stop_signals_held():
            ready, _ = self.ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if not ready:
            return None
        ref = ready[0]
        actor, task = self._running.pop(ref)
        exceptions = self.ray.exceptions
        try:
            with stop_signals_held():
                outcome = self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.ObjectLostError,
                exceptions.WorkerCrashedError):
            self._replace(actor)
            return task, DIED
        except exceptions.RayTaskError as exc:
            self._idle.append(actor)
            return task, Outcome(task, error=" ".join(str(exc.cause).split())[:500])
        self._idle.append(actor)
        return task, outcome

    def _replace(self, dead: Any) -> None:
        """A worker died: one fewer, and a new one started in its place (it counts once it
        is ready; given up if it is not within :data:`REPLACE_TIMEOUT_S`)."""
        self._kill([dead])
        self.capacity = max(0, self.capacity - 1)
        actor = self._worker.remote(*self._args, self._counter)
        self._starting[actor.ready.remote()] = (actor, time.monotonic() + REPLACE_TIMEOUT_S)

    def _check_starting(self) -> None:
        if not self._starting:
            return
        ready, _ = self.ray.wait(list(self._starting), num_returns=len(self._starting),
                                 timeout=0)
        for ref in ready:
            actor, _ = self._starting.pop(ref)
            with contextlib.suppress(Exception):
                if self.ray.get(ref, timeout=5)[1] is None:
                    self._idle.append(actor)
                    self.capacity += 1
                    continue
            self._kill([actor])
        now = time.monotonic()
        for ref, (actor, deadline) in list(self._starting.items()):
            if now > deadline:  # its CPU is gone with its node
                del self._starting[ref]
                self._kill([actor])

    def _head_answers(self) -> bool:
        if self._head is None:
            return True
        try:
            with socket.create_connection(self._head, timeout=1.0):
                return True
        except OSError:
            return False

    def _check_head(self) -> None:
        """PoolError once the head has not answered for :data:`HEAD_LOST_S`."""
        now = time.monotonic()
        if self._head is None or now - self._head_checked < 1.0:
            return
        self._head_checked = now
        if self._head_answers():
            self._head_seen = now
        else:
            if now - self._head_seen > HEAD_LOST_S:
                raise PoolError(f"the cluster's head at {self.address} is gone: the "
                                "recordings not done are not run (--resume does them "
                                "later, on a cluster that runs)") from None

    def progress(self) -> float:
        now = time.monotonic()
        if now - self._last_progress < 0.5:
            return 0.0
        self._last_progress = now
        try:
            with stop_signals_held():
                return float(self.ray.get(self._counter.take.remote(), timeout=2))
        except Exception:
            return 0.0

    def stop(self) -> list[tuple[Task, Outcome | str]]:
        """Every worker stops after its frame in hand (outputs closed), then leaves; the
        cluster itself keeps running."""
        if self._stopped:
            return []
        self._stopped = True
        stopped: list[tuple[Task, Outcome | str]] = []
        alive = self._head_answers()
        for actor, _ in self._running.values() if alive else ():
            with contextlib.suppress(Exception):
                actor.stop.remote()
        deadline = time.monotonic() + (STOP_GRACE_S if alive else 0.0)
        while self._running and time.monotonic() < deadline:
            with stop_signals_held():
                ready, _ = self.ray.wait(list(self._running), num_returns=1, timeout=1.0)
            for ref in ready:
                _, task = self._running.pop(ref)
                outcome: Outcome | str = "stopped"
                with contextlib.suppress(Exception):
                    outcome = self.ray.get(ref, timeout=5)
                stopped.append((task, outcome))
        stopped += [(task, "stopped") for _, task in self._running.values()]
        if alive:
            self._kill([a for a, _ in self._running.values()] + list(self._idle)
                       + [a for a, _ in self._starting.values()])
        self._running.clear()
        self._idle.clear()
        self._starting.clear()
        if alive:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
        else:  # Ray's shutdown would wait a minute for the dead head, and its threads
            skip_finalisation()  # crash in Python's finalisation
        return stopped
