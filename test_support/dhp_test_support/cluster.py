"""A Ray cluster of several nodes on this machine's loopback, for tests and benchmarks.

Each node is a ``ray start --block`` process in a session of its own, with one CPU; the
cluster is stopped by signalling exactly those sessions' process groups, never with
``ray stop`` (which ends every Ray process of the machine, other users' clusters too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackCluster:
    """``with LoopbackCluster(2, logs) as cluster: ... cluster.address ...``"""

    def __init__(self, nodes: int, logs: Path, cpus_per_node: int = 1,
                 timeout_s: float = 300.0) -> None:
        self.count, self.logs, self.timeout_s = nodes, logs, timeout_s
        self.cpus_per_node = cpus_per_node
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        command = [str(Path(sys.executable).with_name("ray")), "start", "--block",
                   "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus_per_node),
                   "--object-store-memory", str(100 << 20),
                   "--dashboard-agent-listen-port", str(free_port()),
                   "--metrics-export-port", str(free_port()), *args]
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "w") as log:  # the child keeps its descriptor
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})

    def cpus(self) -> float:
        """The cluster's CPUs as its head reports them (0 while it is not up)."""
        probe = (f"import ray, logging; ray.init(address={self.address!r}, "
                 "logging_level=logging.ERROR); print(ray.cluster_resources().get('CPU', 0))")
        try:
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                 text=True, timeout=120)
            return float(out.stdout.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            return 0.0

    def _wait(self, cpus: int, node: subprocess.Popen, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while self.cpus() < cpus:
            if node.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"ray node {name} exited: {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not come up in {self.timeout_s} s")
            time.sleep(2)

    def sessions(self) -> set[int]:
        """The nodes' session ids (their workers get process groups of their own, but stay
        in the node's session)."""
        return {node.pid for node in self.nodes}

    def __enter__(self) -> LoopbackCluster:
        try:
            self.nodes.append(self._start("head", "--head", "--port", str(self.port),
                                          "--include-dashboard=false",
                                          "--disable-usage-stats"))
            self._wait(self.cpus_per_node, self.nodes[0], "head")
            for k in range(1, self.count):
                self.nodes.append(self._start(f"node{k}", "--address", self.address))
                self._wait(self.cpus_per_node * (k + 1), self.nodes[-1], f"node{k}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill_node(self, k: int) -> None:
        """Node ``k`` (0: the head) gone at once, every process of it (a machine that
        died)."""
        node = self.nodes[k]
        for pid in self._session_members(node.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.wait(timeout=30)

    def stop(self) -> None:
        """Every process of the nodes' sessions: SIGTERM, then SIGKILL after a minute."""
        for node in self.nodes:
            for pid in self._session_members(node.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=60)
            for pid in self._session_members(node.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.nodes = []

    @staticmethod
    def _session_members(session: int) -> list[int]:
        listing = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True,
                                 text=True).stdout
        return [int(pid) for pid, sid in (line.split() for line in listing.splitlines())
                if int(sid) == session]
