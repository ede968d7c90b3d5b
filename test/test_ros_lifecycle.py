"""The managed (lifecycle) node through the real CLI, as users and supervisors drive it:
``ros2 launch ... lifecycle:=true``, ``ros2 lifecycle get/list/set``, a 30 Hz camera."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import PACK
from ros_harness import (
    TIMEOUT_SCALE,
    Launch,
    Probe,
    camera_info_msg,
    image_msg,
    kill_all_launches,
    require_ros,
    stamp,
    subreaper,
)

pytestmark = pytest.mark.ros
require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from dense_head_pose.msg import FaceArray  # noqa: E402

NODE = "/head_pose_node"
OUTPUTS = {"/faces": FaceArray, "/head_pose": PoseStamped}


@pytest.fixture(scope="module", autouse=True)
def launch_stack(rclpy_context):
    if shutil.which("ros2") is None:
        pytest.fail("the ros2 command is missing (the test set-up installs it)")
    subprocess.run(["ros2", "daemon", "start"], capture_output=True, timeout=30)
    with subreaper():
        yield
        kill_all_launches()
    subprocess.run(["ros2", "daemon", "stop"], capture_output=True, timeout=30)


def lifecycle(*args: str, timeout: float = 30.0) -> str:
    """``ros2 lifecycle ARGS``, again while the CLI has not discovered the node yet."""
    end = time.monotonic() + timeout
    while True:
        result = subprocess.run(["ros2", "lifecycle", *args], capture_output=True, text=True,
                                timeout=60, check=False)
        out = result.stdout + result.stderr
        if "Node not found" not in out or time.monotonic() > end:
            return out
        time.sleep(0.5)


def state() -> str:
    return lifecycle("get", NODE).split()[0]


class Transitions:
    """The node's ``change_state`` service called from the probe: what ``ros2 lifecycle
    set`` calls, without starting a ``ros2`` process (about two seconds) each time, for
    tests of many cycles (the command itself: test_every_transition_through_the_cli)."""

    def __init__(self, probe: Probe) -> None:
        self.probe, self.request = probe, ChangeState.Request
        self.client = probe.node.create_client(ChangeState, f"{NODE}/change_state")
        assert self.client.wait_for_service(timeout_sec=10 * TIMEOUT_SCALE)

    def set(self, label: str) -> bool:
        """Ask for the transition ``label`` ("activate", "deactivate", ...); its success."""
        request = self.request()
        request.transition.id = getattr(Transition, f"TRANSITION_{label.upper()}")
        future = self.client.call_async(request)
        assert self.probe.spin_until(future.done, 30), f"no answer to {label}"
        return future.result().success


def node_pid(launch: Launch) -> int:
    end = time.monotonic() + 20 * TIMEOUT_SCALE
    while "head_pose_node" not in launch.processes():
        assert time.monotonic() < end, launch.output()
        time.sleep(0.1)
    return launch.processes()["head_pose_node"][1]


def empty_participant_cpu(seconds: float = 5.0) -> float:
    """CPU (fraction of a core) of a process holding an rclpy node with nothing in it, on
    this machine now: what any idle ROS 2 process costs, the baseline of "no CPU"."""
    code = ("import rclpy, sys, time\n"
            "from rclpy.executors import SingleThreadedExecutor\n"
            "rclpy.init(); node = rclpy.create_node('empty_participant')\n"
            "executor = SingleThreadedExecutor(); executor.add_node(node)\n"
            "end = time.monotonic() + 2.0\n"
            "while time.monotonic() < end: executor.spin_once(timeout_sec=0.5)\n"
            "t0, w0 = time.process_time(), time.monotonic()\n"
            f"while time.monotonic() < w0 + {seconds}: executor.spin_once(timeout_sec=0.5)\n"
            "print((time.process_time() - t0) / (time.monotonic() - w0))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Camera:
    """A 30 Hz camera on /camera/image_raw and /camera/camera_info (reliable)."""

    def __init__(self, probe: Probe, frame: np.ndarray) -> None:
        qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.image = probe.publisher(Image, "/camera/image_raw", qos)
        self.info = probe.publisher(CameraInfo, "/camera/camera_info", qos)
        self.probe, self.frame, self.count = probe, frame, 0

    def run(self, seconds: float) -> int:
        """Publish for ``seconds``; how many frames."""
        start, first = time.monotonic(), self.count
        h, w = self.frame.shape[:2]
        while time.monotonic() < start + seconds:
            self.count += 1
            t = stamp(5000 + self.count // 30, (self.count % 30) * 33_000_000)
            self.info.publish(camera_info_msg(w, w, w / 2, h / 2, w, h, "cam", t))
            self.image.publish(image_msg(self.frame, "cam", t))
            self.probe.spin_to(start + (self.count - first) / 30)
        return self.count - first


def _probe() -> Probe:
    probe = Probe(f"lifecycle_probe_{time.time_ns()}")
    for topic, msg_type in OUTPUTS.items():
        probe.subscribe(msg_type, topic)
    probe.subscribe(DiagnosticArray, "/diagnostics")
    return probe


def _outputs(probe: Probe) -> int:
    return sum(len(probe.received[t]) for t in OUTPUTS)


def _last_diagnostic(probe: Probe) -> dict:
    """The node's first diagnostic status stamped from now on (older ones may still be
    queued: the probe does not spin while the CLI runs)."""
    since = time.time()

    def fresh() -> list:
        return [s for m in probe.received["/diagnostics"]
                if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= since
                for s in m.status if s.name.startswith("head_pose_node")]

    assert probe.spin_until(lambda: bool(fresh()), 10)
    status = fresh()[0]
    level = status.level if isinstance(status.level, int) else ord(status.level)
    return {"level": level, "message": status.message,
            **{kv.key: kv.value for kv in status.values}}


def _finish(launch: Launch) -> dict:
    launch.send(signal.SIGINT)
    report = launch.finish(timeout=40)
    assert report["leftover"] == [], report["output"][-3000:]
    assert "Traceback" not in report["output"], report["output"][-3000:]
    errors = [line for line in report["output"].splitlines() if "[ERROR]" in line
              and "cannot load the model pack" not in line]  # the one a test provokes
    assert not errors, "\n".join(errors)
    return report


def test_every_transition_through_the_cli(tmp_path, video_frames) -> None:
    """unconfigured -> configured -> active -> inactive -> unconfigured -> finalized, with
    what each state means: nothing out while inactive and no CPU, models freed at
    cleanup, the process gone after shutdown."""
    small = np.ascontiguousarray(video_frames[10][::2, ::2])  # 640x360
    launch = Launch("head_pose.launch.py", "lifecycle:=true", "autostart:=false",
                    "image:=/camera/image_raw", "camera_info:=/camera/camera_info",
                    "image_qos:=reliable", log_dir=tmp_path)
    probe = _probe()
    try:
        pid = node_pid(launch)
        assert state() == "unconfigured"
        listing = lifecycle("list", NODE)
        assert "configure [1]" in listing and "shutdown [5]" in listing
        diag = _last_diagnostic(probe)
        assert diag["lifecycle_state"] == "unconfigured" and "waiting for configure" in \
            diag["message"]
        unconfigured_mb = rss_mb(pid)
        # what the process costs doing nothing at all (its DDS participant's own threads and
        # timers: 0.3 % of a core on some machines, 6 % on others): the baseline below
        cpu0, start = cpu_seconds(pid), time.monotonic()
        probe.spin_for(5.0)
        idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - start)
        assert "Transitioning successful" in lifecycle("set", NODE, "configure")
        assert state() == "inactive"
        configured_mb = rss_mb(pid)
        camera = Camera(probe, small)
        probe.spin_for(1.0)
        assert camera.image.get_subscription_count() == 0  # nobody subscribes while inactive
        cpu0 = cpu_seconds(pid)
        start = time.monotonic()
        camera.run(5.0)
        inactive_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - start)
        assert _outputs(probe) == 0
        # inactive costs nothing more than unconfigured: under 1 % of a core above it
        assert inactive_cpu < idle_cpu + 0.01, (inactive_cpu, idle_cpu)
        assert "Transitioning successful" in lifecycle("set", NODE, "activate")
        assert state() == "active"
        probe.wait_for_subscribers(camera.image)
        sent = camera.run(3.0)
        probe.spin_for(0.5)
        assert len(probe.received["/head_pose"]) > 0.6 * sent, launch.output()[-2000:]
        assert _last_diagnostic(probe)["lifecycle_state"] == "active"
        assert "Transitioning successful" in lifecycle("set", NODE, "deactivate")
        assert state() == "inactive"
        probe.clear()
        camera.run(2.0)
        assert _outputs(probe) == 0
        # Compared with the RSS just before cleanup, not with the RSS after configure: running
        # grows the heap too (frames, work buffers), and that growth is not the models'.
        working_mb = rss_mb(pid)
        assert "Transitioning successful" in lifecycle("set", NODE, "cleanup")
        assert state() == "unconfigured"
        cleaned_mb = rss_mb(pid)
        loaded = configured_mb - unconfigured_mb
        assert loaded > 20, (unconfigured_mb, configured_mb)
        # The models are about 40 MB of arrays and interpreters; how much of the rest of what
        # configure added (imports, the allocator's caches) comes back depends on the libc
        # and Python, so the bound is absolute: most of the models must go.
        memory = (unconfigured_mb, configured_mb, working_mb, cleaned_mb)
        assert working_mb - cleaned_mb > 15, memory
        assert "Transitioning successful" in lifecycle("set", NODE, "configure")
        # loaded again into what cleanup freed, not on top of it
        assert rss_mb(pid) < working_mb + 10, (memory, rss_mb(pid))
        assert "Transitioning successful" in lifecycle("set", NODE, "shutdown")
        report = launch.finish(timeout=30)  # finalized: the node exits, and with it launch
        assert report["nodes"] == {"head_pose_node": 0}, report["output"][-3000:]
        assert "Traceback" not in report["output"]
        print(f"inactive CPU {inactive_cpu * 100:.2f} % of a core; RSS unconfigured "
              f"{unconfigured_mb:.0f} MB, configured {configured_mb:.0f} MB, running "
              f"{working_mb:.0f} MB, after cleanup {cleaned_mb:.0f} MB")
    finally:
        probe.destroy()
        launch.kill()


def test_configure_fails_without_models_and_recovers(tmp_path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    params = tmp_path / "params.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    models_dir: {pack}\n")
    launch = Launch("head_pose.launch.py", "lifecycle:=true", "autostart:=false",
                    f"params_file:={params}", log_dir=tmp_path)
    probe = _probe()
    try:
        node_pid(launch)
        out = lifecycle("set", NODE, "configure")
        assert "Transitioning successful" not in out and "failed" in out.lower(), out
        assert state() == "unconfigured"
        diag = _last_diagnostic(probe)
        assert diag["level"] == 2 and "models build" in diag["message"], diag  # ERROR
        for entry in PACK.iterdir():  # the models appear
            if entry.is_file():
                shutil.copy(entry, pack / entry.name)
        assert "Transitioning successful" in lifecycle("set", NODE, "configure")
        assert state() == "inactive"
        assert _last_diagnostic(probe)["level"] == 0
        _finish(launch)
    finally:
        probe.destroy()
        launch.kill()


def test_autostart_and_fifty_cycles_without_leaks(tmp_path, video_frames) -> None:
    small = np.ascontiguousarray(video_frames[20][::2, ::2])
    launch = Launch("head_pose.launch.py", "lifecycle:=true", "image:=/camera/image_raw",
                    "camera_info:=/camera/camera_info", "image_qos:=reliable",
                    log_dir=tmp_path)
    probe = _probe()
    try:
        pid = node_pid(launch)
        end = time.monotonic() + 30 * TIMEOUT_SCALE
        while state() != "active":  # autostart: launch configures, then activates
            assert time.monotonic() < end, launch.output()[-3000:]
            time.sleep(0.3)
        camera = Camera(probe, small)
        probe.wait_for_subscribers(camera.image)
        camera.run(2.0)
        assert probe.received["/head_pose"]
        # the first cycle through `ros2 lifecycle`, the other 49 through its service
        assert "Transitioning successful" in lifecycle("set", NODE, "deactivate")
        camera.run(0.2)
        assert "Transitioning successful" in lifecycle("set", NODE, "activate")
        camera.run(0.3)
        transitions = Transitions(probe)
        for cycle in range(1, 50):
            if cycle == 5:
                before = rss_mb(pid)  # after the first cycles settled every pool
            assert transitions.set("deactivate")
            camera.run(0.2)
            assert transitions.set("activate")
            camera.run(0.3)
        after = rss_mb(pid)
        assert after - before < 20, (before, after)
        probe.wait_for_subscribers(camera.image)  # the last activate's subscription
        probe.clear()
        sent = camera.run(3.0)
        probe.spin_for(0.5)
        assert len(probe.received["/head_pose"]) > 0.6 * sent, launch.output()[-2000:]
        assert "Transitioning successful" in lifecycle("set", NODE, "deactivate")
        cpu0, start = cpu_seconds(pid), time.monotonic()
        camera.run(3.0)  # idle after fifty cycles as after none: nothing left spinning
        idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - start)
        baseline = empty_participant_cpu()
        assert idle_cpu < baseline + 0.02, (idle_cpu, baseline)
        print(f"RSS over 45 activate/deactivate cycles at 30 Hz: {before:.0f} -> {after:.0f} MB"
              f"; inactive CPU afterwards {idle_cpu * 100:.2f} % of a core")
        _finish(launch)
    finally:
        probe.destroy()
        launch.kill()


@pytest.mark.parametrize("target", ["unconfigured", "inactive", "active", "finalized"])
def test_ctrl_c_in_every_state_is_clean(tmp_path, target) -> None:
    launch = Launch("head_pose.launch.py", "lifecycle:=true", "autostart:=false",
                    log_dir=tmp_path)
    try:
        node_pid(launch)
        steps = {"unconfigured": [], "inactive": ["configure"],
                 "active": ["configure", "activate"], "finalized": ["shutdown"]}[target]
        for step in steps:
            assert "Transitioning successful" in lifecycle("set", NODE, step)
        if target != "finalized":
            assert state() == target
            report = _finish(launch)
        else:
            report = launch.finish(timeout=30)
        assert report["nodes"] == {"head_pose_node": 0}, report["output"][-3000:]
    finally:
        launch.kill()
