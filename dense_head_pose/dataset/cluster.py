"""The run's workers on a Ray cluster: an actor per worker CPU, each loading the model pack
once, a recording (or chunk) a task.

Ray is an optional extra (``pip install "dense-head-pose[cluster]"``). Every node runs the
same package and reads the inputs, the outputs and ``--models`` at the same paths (a shared
file system); frames never pass through the driver, only a chunk's face rows and counts.

What can go wrong, and what the driver does:

* an address where no Ray answers (nothing listening, another server, a cluster that does
  not finish the handshake): one line within ``--ray-timeout`` seconds (:func:`connect`),
  stop signals honoured meanwhile; Ray alone retries for minutes;
* a worker that dies (killed, its node gone): its task is redone by another, and a new
  worker is started in its place; one that cannot start within :data:`REPLACE_TIMEOUT_S`
  (its node is gone, taking its CPU) is given up, so tasks only wait for workers that
  exist; with none left, the run ends (:class:`~.driver.PoolError`) with what is done;
* the head gone: noticed within :data:`HEAD_LOST_S` (Ray's own driver would end the process
  a minute later with a line of its own): the run ends the same way;
* a stop signal: every worker stops after its frame in hand, its outputs closed.

A cluster reachable from other machines without token authentication runs anyone's code:
the driver says so (see docs/cluster.md).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from typing import Any

from ..errors import DenseHeadPoseError, ModelError
from ..lifetime import Interrupted, raise_on_stop_signals
from .work import Outcome, Settings, Task, perform

LOG = logging.getLogger("dense_head_pose.dataset")
#: Seconds a new worker has to load the model pack.
READY_TIMEOUT_S = 600.0
#: Once one worker is ready, the others get this much longer before the run goes on without.
STARTUP_GRACE_S = 30.0
#: Seconds a worker started in a dead one's place has to come up.
REPLACE_TIMEOUT_S = 60.0
#: Seconds the head may be unreachable before the run ends.
HEAD_LOST_S = 10.0
#: How long stopped workers are given to close their outputs.
STOP_GRACE_S = 60.0
DEFAULT_TIMEOUT_S = 60.0
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class ClusterError(DenseHeadPoseError):
    """No cluster at the address, Ray not installed, or a worker that cannot start."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install \"dense-head-pose[cluster]\"") \
            from None
    return ray


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto``;
    ClusterError for anything else."""
    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--ray {address!r}: not an address (auto, HOST:PORT or "
                           "ray://HOST:PORT)")
    return host, int(port)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """One line, within ``timeout`` seconds, when nothing listens at the address or what
    listens does not speak Ray's protocol (gRPC: an HTTP/2 server answers the client's
    preface with its settings). ``auto`` is Ray's to find; with TLS only the port is
    checked."""
    where = host_port(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0") not in ("0", ""):
                return
            sock.sendall(_HTTP2_PREFACE)
            sock.settimeout(timeout)
            answer = sock.recv(9)
    except TimeoutError:
        raise ClusterError(f"--ray {address}: something listens there but does not answer "
                           f"as a Ray cluster does (no answer in {timeout:g} s)") from None
    except OSError as exc:
        raise ClusterError(f"--ray {address}: no Ray cluster answers there "
                           f"({exc.strerror or exc}); start one with `ray start --head`") \
            from None
    if len(answer) < 9 or answer[3] != 0x04:  # an HTTP/2 SETTINGS frame
        raise ClusterError(f"--ray {address}: what listens there is not a Ray cluster "
                           "(it does not speak gRPC)")


def connect(address: str, timeout: float) -> Any:
    """Join the cluster within ``timeout`` seconds (a stop signal ends the wait); Ray's
    own stop handlers are replaced by the command's."""
    ray = _ray()
    check_reachable(address, min(5.0, timeout))
    failure: list[BaseException] = []
    joined = threading.Event()

    def join() -> None:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        joined.set()

    threading.Thread(target=join, name="ray-connect", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not joined.wait(0.2):
        if time.monotonic() > deadline:
            raise ClusterError(f"--ray {address}: no Ray cluster joined within {timeout:g} s "
                               "(--ray-timeout)")
    raise_on_stop_signals()  # ray.init installs a SIGTERM handler that exits 15
    if failure:
        raise ClusterError(f"--ray {address}: cannot join the cluster "
                           f"({' '.join(str(failure[0]).split())[:300]})")
    _warn_if_exposed(ray, address)
    return ray


def _warn_if_exposed(ray: Any, address: str) -> None:
    """A warning when the cluster runs without token authentication and is not on
    loopback."""
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        secured = is_token_auth_enabled()
    except Exception:  # an older Ray: no token authentication at all
        secured = False
    where = host_port(address)
    host = where[0] if where else socket.gethostname()
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False
    if not secured and not loopback:
        LOG.warning("the Ray cluster at %s runs without token authentication and is not on "
                    "loopback: anyone who reaches its ports can run code on its nodes "
                    "(docs/cluster.md: RAY_AUTH_MODE=token, or a tunnel)", address)


class RecordingWorker:
    """A Ray actor: a loaded estimator, its tasks one at a time, and a stop that the task
    in hand acts on after its frame (two threads: ``stop`` runs beside ``run``)."""

    def __init__(self, models: str | None, estimator_options: Any, settings: Settings,
                 progress: Any) -> None:
        import platform

        from ..pipeline.estimator import HeadPoseEstimator

        self.node = platform.node()
        self.settings = settings
        self.progress = progress
        self.stopping = False
        try:
            self.estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
            self.problem: str | None = None
        except (ModelError, OSError, ValueError) as exc:
            self.estimator = None
            self.problem = str(exc)

    def ready(self) -> tuple[str, str | None, int]:
        """This worker's node, why it cannot work (None: it can), and its process id."""
        return self.node, self.problem, os.getpid()

    def stop(self) -> None:
        self.stopping = True

    def _checkpoint(self) -> None:
        if self.stopping:
            raise KeyboardInterrupt

    def run(self, task: Task) -> Outcome:
        pending = [0.0, time.monotonic()]

        def report(seconds: float) -> None:
            pending[0] += seconds
            if time.monotonic() - pending[1] >= 0.5:
                self.progress.add.remote(pending[0])
                pending[:] = [0.0, time.monotonic()]

        try:
            self._checkpoint()
            outcome = perform(task, self.settings, self.estimator, report,
                              checkpoint=self._checkpoint)
        except (KeyboardInterrupt, Interrupted):
            return Outcome(task, interrupted=True)
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
