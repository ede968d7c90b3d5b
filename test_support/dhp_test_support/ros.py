"""Driving the package's nodes from outside, as a user's system would: node and launch
processes, and a probe participant that publishes inputs and records outputs.

The tests and the ROS benchmarks (``scripts/benchmark_ros.py``, ``benchmark_cameras.py``)
use it: each node runs as its own process (the installed ``lib/dense_head_pose/<name>``),
the caller is a second rclpy participant. Keep the traffic on loopback in a domain of its
own (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``ROS_DOMAIN_ID``) before rclpy is
imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .processes import default_signals, group_members

#: Deadlines of the waits below are multiplied by this (``DHP_TIMEOUT_SCALE``): tests wait
#: for events, and a deadline only ends a wait that failed, so on a loaded machine (one
#: core busy, the CI's) they must be generous.
TIMEOUT_SCALE = float(os.environ.get("DHP_TIMEOUT_SCALE", "3"))

def executable(name: str) -> Path:
    """Path of an installed executable of the package (what ``ros2 run`` would start)."""
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix("dense_head_pose")) / "lib" / "dense_head_pose" / name
    assert path.is_file(), f"{path} is not installed (colcon build)"
    return path


class NodeProcess:
    """A node started as a separate process with ``--ros-args``; output captured to a file."""

    def __init__(self, name: str, params: dict[str, Any] | None = None,
                 remaps: dict[str, str] | None = None, log_dir: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        args = [str(executable(name)), "--ros-args"]
        for key, value in (params or {}).items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            args += ["-p", f"{key}:={value}"]
        for src, dst in (remaps or {}).items():
            args += ["-r", f"{src}:={dst}"]
        self.log_path = (log_dir or Path("/tmp")) / f"{name}-{os.getpid()}-{time.time_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=default_signals,
                                     env={**os.environ, **(env or {})})

    def output(self) -> str:
        """Everything the process printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the process so far (VmHWM), MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGINT, as Ctrl-C or ``ros2 launch`` would; returns the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Probe:
    """The test's own participant: publishes inputs and records every output it receives."""

    def __init__(self, name: str = "probe") -> None:
        import rclpy
        from rclpy.node import Node

        self.rclpy = rclpy
        self.node = Node(name)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._subs: list[Any] = []

    def subscribe(self, msg_type: type, topic: str, qos: Any = 10, raw: bool = False) -> None:
        """Record messages of ``topic`` in ``received[topic]`` (serialized bytes if ``raw``)."""
        self._subs.append(self.node.create_subscription(
            msg_type, topic, lambda m, t=topic: self.received[t].append(m), qos, raw=raw))

    def publisher(self, msg_type: type, topic: str, qos: Any = None) -> Any:
        """A publisher (reliable, depth 10 unless ``qos`` says otherwise)."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = qos or QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        return self.node.create_publisher(msg_type, topic, qos)

    def spin_until(self, condition: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Spin until ``condition()`` holds; False on timeout (``timeout`` times
        :data:`TIMEOUT_SCALE`: a deadline is only reached when something is wrong, so a busy
        machine gets room at no cost to a passing test)."""
        end = time.monotonic() + timeout * TIMEOUT_SCALE
        while time.monotonic() < end:
            if condition():
                return True
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        return condition()

    def spin_to(self, deadline: float) -> None:
        """Spin until ``time.monotonic()`` reaches ``deadline`` and not much later (a paced
        publisher's clock: :meth:`spin_for` may overshoot by 50 ms)."""
        while (left := deadline - time.monotonic()) > 0:
            self.rclpy.spin_once(self.node, timeout_sec=left)

    def spin_for(self, seconds: float) -> None:
        """Spin for a while, collecting messages."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.05)

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 20.0) -> None:
        """Block until the node under test has matched ``publisher``."""
        assert self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout), \
            "the node never subscribed"

    def wait_for_publishers(self, topics: Iterable[str], timeout: float = 20.0) -> None:
        """Block until every topic has a publisher matched to our subscriptions."""
        for sub in self._subs:
            if sub.topic_name.lstrip("/") in {t.lstrip("/") for t in topics}:
                assert self.spin_until(lambda s=sub: s.get_publisher_count() > 0, timeout), \
                    f"no publisher on {sub.topic_name}"

    def clear(self) -> None:
        """Forget recorded messages."""
        self.received.clear()

    def destroy(self) -> None:
        """Destroy the probe node."""
        self.node.destroy_node()


def stamp(sec: int, nanosec: int = 0) -> Any:
    """A builtin_interfaces/Time."""
    from builtin_interfaces.msg import Time

    return Time(sec=sec, nanosec=nanosec)


def image_msg(image: np.ndarray, frame_id: str, t: Any, encoding: str = "bgr8",
              step_padding: int = 0) -> Any:
    """A sensor_msgs/Image of ``image`` (already in ``encoding``'s channel order)."""
    import array

    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    h, w = image.shape[:2]
    row = image.reshape(h, -1).view(np.uint8)
    if step_padding:
        padded = np.full((h, row.shape[1] + step_padding), 0xAB, np.uint8)
        padded[:, :row.shape[1]] = row
        row = padded
    msg = Image(header=Header(stamp=t, frame_id=frame_id), height=h, width=w, encoding=encoding,
                is_bigendian=0, step=row.shape[1])
    msg.data = array.array("B", np.ascontiguousarray(row).tobytes())
    return msg


def camera_info_msg(fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                    frame_id: str, t: Any) -> Any:
    """A sensor_msgs/CameraInfo with intrinsics K."""
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    return CameraInfo(header=Header(stamp=t, frame_id=frame_id), width=width, height=height,
                      k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])


#: every Launch started, so a failed test cannot leave one running (see kill_all_launches)
LAUNCHED: list[Launch] = []


def kill_all_launches() -> None:
    """Kill whatever is left of any launch started by the tests."""
    while LAUNCHED:
        LAUNCHED.pop().kill()


_STARTED = re.compile(r"\[INFO\] \[([\w.-]+)-(\d+)\]: process started with pid \[(\d+)\]")


class Launch:
    """``ros2 launch dense_head_pose FILE ARGS...`` as a user runs it, in its own session
    (process group), output captured to a file."""

    def __init__(self, launch_file: str, *args: str, log_dir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.log_path = log_dir / f"launch-{time.time_ns()}.log"
        self._log = self.log_path.open("w")
        self.command = ["ros2", "launch", "dense_head_pose", launch_file, *args]
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=default_signals,
                                     env={**os.environ, **(env or {})})
        self.pgid = self.proc.pid
        LAUNCHED.append(self)

    def output(self) -> str:
        """Everything printed so far (launch's and its processes')."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def processes(self) -> dict[str, tuple[str, int]]:
        """Launched processes: ``{name: (label, pid)}``, e.g. ``head_pose_node:
        ("head_pose_node-2", 4242)`` (the label is what launch prefixes their lines with)."""
        return {m.group(1): (f"{m.group(1)}-{m.group(2)}", int(m.group(3)))
                for m in _STARTED.finditer(self.output())}

    def labelled(self) -> dict[str, int]:
        """Launched processes by label: ``{"head_pose_node-1": pid, ...}`` (several of one
        executable, as multi_camera.launch.py starts, each have their own)."""
        return {f"{m.group(1)}-{m.group(2)}": int(m.group(3))
                for m in _STARTED.finditer(self.output())}

    def wait_for_output(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until ``text`` was printed (False on timeout, scaled as
        :meth:`Probe.spin_until`'s, or if launch ended first)."""
        end = time.monotonic() + timeout * TIMEOUT_SCALE
        while time.monotonic() < end:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def send(self, sig: int, group: bool = False) -> None:
        """Send ``sig`` to the launch process, or to its whole process group (a terminal's
        Ctrl-C reaches every process of the group)."""
        if group:
            os.killpg(self.pgid, sig)
        else:
            self.proc.send_signal(sig)

    def finish(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for launch and every launched process to end; report how each ended.

        ``{"launch": exit status, "nodes": {name: exit status or "orphan"}, "output": str}``
        (a name launched twice is reported by label, ``head_pose_node-1``).
        A node's status comes from launch's own report, or, if launch was gone first, from
        reaping it (the test process must be a subreaper, :func:`become_subreaper`).
        """
        end = time.monotonic() + timeout
        try:
            launch_status = self.proc.wait(timeout=max(end - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            launch_status = "hung"
        nodes: dict[str, Any] = {}
        names = [label.rsplit("-", 1)[0] for label in self.labelled()]
        for label, pid in self.labelled().items():  # by name, or by label if one repeats
            name = label.rsplit("-", 1)[0]
            nodes[name if names.count(name) == 1 else label] = \
                self._node_status(label, pid, end)
        if launch_status == "hung":
            os.killpg(self.pgid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()
        return {"launch": launch_status, "nodes": nodes, "output": self.output(),
                "leftover": group_members(self.pgid)}

    def _node_status(self, label: str, pid: int, end: float) -> Any:
        clean = f"[{label}]: process has finished cleanly [pid {pid}]"
        died = re.compile(rf"\[{re.escape(label)}\]: process has died "
                          rf"\[pid {pid}, exit code (-?\d+)")
        while True:
            out = self.output()
            if clean in out:
                return 0
            match = died.search(out)
            if match:
                return int(match.group(1))
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped == pid:
                    return os.waitstatus_to_exitcode(status)
            except ChildProcessError:  # launch's child, not (yet) ours
                if not Path(f"/proc/{pid}").exists() and self.proc.poll() is not None:
                    out = self.output()
                    return 0 if clean in out else "unknown"
            if time.monotonic() > end:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return "orphan"
            time.sleep(0.05)

    def kill(self) -> None:
        """Make sure nothing of this launch survives a failed test."""
        if group_members(self.pgid):
            os.killpg(self.pgid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait()
        if not self._log.closed:
            self._log.close()
