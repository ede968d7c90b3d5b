"""The dataset's workers on a Ray cluster: an actor per worker CPU, each loading the model
pack once, a recording (or chunk) a task.

Ray is an optional extra (``pip install "dense-head-pose[cluster]"``). Every node runs the
same package and reads the inputs, the outputs and ``--models`` at the same paths (a
shared file system); frames never pass through the driver, only each task's face rows and
counts. A worker that dies (killed, its node gone) fails only its task, which the driver
gives to another worker (a new actor takes the dead one's place).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections import deque
from typing import Any

from ..errors import DenseHeadPoseError, ModelError
from .work import Outcome, Settings, Task

LOG = logging.getLogger("dense_head_pose.dataset")
#: How long the driver waits for a cluster's address to answer, and for the workers to load
#: the model pack.
CONNECT_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 600.0


class ClusterError(DenseHeadPoseError):
    """No cluster at the address, Ray not installed, or a worker that cannot start."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install \"dense-head-pose[cluster]\"") \
            from None
    return ray


def check_reachable(address: str) -> None:
    """One line, within seconds, when nothing listens at ``HOST:PORT`` (or
    ``ray://HOST:PORT``); Ray itself would retry for minutes. ``auto`` is Ray's to find."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address}: not an address (auto, HOST:PORT or "
                           "ray://HOST:PORT)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterError(f"--ray {address}: no Ray cluster answers there "
                           f"({exc.strerror or exc}); start one with `ray start --head`") \
            from None


class RecordingWorker:
    """A Ray actor: a loaded estimator, and the tasks given to it one at a time."""

    def __init__(self, models: str | None, estimator_options: Any, settings: Settings,
                 progress: Any) -> None:
        import platform

        from ..pipeline.estimator import HeadPoseEstimator

        self.node = platform.node()
        self.settings = settings
        self.progress = progress
        try:
            self.estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
            self.problem: str | None = None
        except (ModelError, OSError, ValueError) as exc:
            self.estimator = None
            self.problem = str(exc)

    def ready(self) -> tuple[str, str | None, int]:
        """This worker's node, why it cannot work (None: it can), and its process id."""
        return self.node, self.problem, os.getpid()

    def run(self, task: Task) -> Outcome:
        from .work import perform

        pending = [0.0, time.monotonic()]

        def report(seconds: float) -> None:
            pending[0] += seconds
            if time.monotonic() - pending[1] >= 0.5:
                self.progress.add.remote(pending[0])
                pending[:] = [0.0, time.monotonic()]

        outcome = perform(task, self.settings, self.estimator, report)
        if pending[0]:
            self.progress.add.remote(pending[0])
        return outcome


class ProgressCounter:
    """A Ray actor adding up the media seconds the workers report."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        self.seconds += seconds

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class RayPool:
    """A worker per CPU of the cluster (or ``workers``), ready before any work starts."""

    def __init__(self, address: str, models: str | None, estimator_options: Any,
                 settings: Settings, workers: int | None = None) -> None:
        ray = _ray()
        check_reachable(address)
        self.ray = ray
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"--ray {address}: cannot join the cluster "
                               f"({' '.join(str(exc).split())[:300]})") from None
        if models is not None:
            models = os.path.abspath(models)  # the workers' working directory is not ours
        self._args = (models, estimator_options, settings)
        self._worker = ray.remote(num_cpus=1, max_restarts=0)(RecordingWorker)
        self._counter = ray.remote(num_cpus=0)(ProgressCounter).remote()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = max(1, workers or cpus)
        self._idle: deque[Any] = deque()
        self._running: dict[Any, tuple[Any, Task]] = {}
        self._last_progress = 0.0
        actors = [self._new_actor() for _ in range(self.capacity)]
        try:
            answers = ray.get([a.ready.remote() for a in actors], timeout=READY_TIMEOUT_S)
        except Exception as exc:
            self._kill(actors)
            raise ClusterError(f"the workers could not start ({' '.join(str(exc).split())[:300]})"
                               ) from None
        for actor, (node, problem, _) in zip(actors, answers):
            if problem is not None:
                self._kill(actors)
                raise ModelError(f"worker on node {node} cannot load the model pack: "
                                 f"{problem}")
            self._idle.append(actor)
        self.pids = [pid for _, _, pid in answers]

    def _new_actor(self) -> Any:
        return self._worker.remote(*self._args, self._counter)

    def _kill(self, actors: Any) -> None:
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)

    def submit(self, task: Task) -> None:
        actor = self._idle.popleft() if self._idle else self._new_actor()
        self._running[actor.run.remote(task)] = (actor, task)

    def next_done(self, timeout: float) -> tuple[Task, Outcome | str] | None:
        from .runner import DIED

        if not self._running:
            return None
        ready, _ = self.ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if not ready:
            return None
        ref = ready[0]
        actor, task = self._running.pop(ref)
        try:
            outcome = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.ObjectLostError,
                self.ray.exceptions.WorkerCrashedError):
            self._kill([actor])
            # a node that left takes its CPUs: fewer workers, none waiting for a place
            with contextlib.suppress(Exception):
                cpus = int(self.ray.cluster_resources().get("CPU", 1))
                self.capacity = max(1, min(self.capacity, cpus))
            return task, DIED
        except self.ray.exceptions.RayTaskError as exc:
            self._idle.append(actor)
            return task, Outcome(task, error=" ".join(str(exc.cause).split())[:500])
        self._idle.append(actor)
        return task, outcome

    def progress(self) -> float:
        now = time.monotonic()
        if now - self._last_progress < 0.5:
            return 0.0
        self._last_progress = now
        try:
            return float(self.ray.get(self._counter.take.remote(), timeout=10))
        except Exception:
            return 0.0

    def stop(self) -> None:
        """Kill every worker (their tasks' temporary outputs are the driver's to remove)
        and leave the cluster; the cluster itself keeps running."""
        self._kill([a for a, _ in self._running.values()] + list(self._idle))
        self._running.clear()
        self._idle.clear()
        with contextlib.suppress(Exception):
            self.ray.shutdown()
