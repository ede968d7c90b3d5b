"""The package's node executables as a user starts them: ``--help``, no parameters at all,
Ctrl-C while they are still starting, and the image QoS that matches the camera."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from ros_harness import TIMEOUT_SCALE, NodeProcess, Probe, executable, require_ros

pytestmark = pytest.mark.ros
require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_rig import FRAME  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from ros_harness import image_msg, stamp  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from dense_head_pose.msg import FaceArray  # noqa: E402

EXECUTABLES = ("head_pose_node", "image_source", "hri_tracked_merger")


@pytest.mark.parametrize("name", EXECUTABLES)
@pytest.mark.parametrize("args", [["--help"], ["--ros-args", "--help"], ["-h"]])
def test_help_prints_usage_and_starts_nothing(name, args) -> None:
    """`ros2 run dense_head_pose X --help` (or `--ros-args --help`) prints what it does and
    its parameters, exit 0 (it was UnknownROSArgsError, or for head_pose_node a node that
    started silently)."""
    proc = subprocess.run([str(executable(name)), *args], capture_output=True, text=True,
                          timeout=60 * TIMEOUT_SCALE, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: ros2 run dense_head_pose {name}" in proc.stdout
    assert "parameters (default):" in proc.stdout
    assert "Traceback" not in proc.stderr and "starting" not in proc.stderr
    if name == "head_pose_node":
        assert "  score_threshold (0.6)" in proc.stdout and "smoothing.rotation" in proc.stdout


def test_the_merger_runs_standalone_without_parameters(rclpy_context, tmp_path) -> None:
    """`ros2 run dense_head_pose hri_tracked_merger` with no parameters merges every
    */humans/faces/tracked it finds, as documented (it died of ParameterUninitialized)."""
    node = NodeProcess("hri_tracked_merger", log_dir=tmp_path)
    probe = Probe("merger_standalone")
    try:
        assert probe.spin_until(lambda: "merging" in node.output(), 30), node.output()
        assert node.alive()
    finally:
        probe.destroy()
        assert node.stop() == 0
    assert "Traceback" not in node.output() and "Exception" not in node.output()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _catches_sigint(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGINT (its status' SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.parametrize("name", EXECUTABLES)
def test_ctrl_c_while_starting_is_an_orderly_stop(tmp_path, name) -> None:
    """SIGINT at moments from the first line of the executable to the node's creation (the
    imports take about a second): exit 0, never a KeyboardInterrupt traceback. The child
    starts with SIGINT ignored, so that the signal cannot land while the interpreter itself
    initialises (no Python program can handle it there); the executable's first line
    installs its own handler, and the delays count from then."""
    params = {"image_source": ["-p", "source:=" + str(tmp_path)]}.get(name, [])
    for delay in (0.0, 0.2, 0.5, 0.9, 1.5):
        proc = subprocess.Popen([str(executable(name)), "--ros-args", *params],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_ignore_sigint)
        try:
            end = time.monotonic() + 60 * TIMEOUT_SCALE
            while not _catches_sigint(proc.pid):
                assert proc.poll() is None and time.monotonic() < end, proc.communicate()[0]
                time.sleep(0.002)
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60 * TIMEOUT_SCALE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, (delay, out)
        assert proc.returncode in (0, 1), (delay, proc.returncode, out)  # 1: no source


def _received(probe: Probe) -> int:
    """The node's latest ``frames_received`` (0 before its first diagnostics)."""
    counts = [int(kv.value) for m in probe.received["/diagnostics"] for st in m.status
              for kv in st.values if kv.key == "frames_received"]
    return counts[-1] if counts else 0


@pytest.mark.parametrize("reliable", [True, False])
def test_image_qos_auto_matches_the_publisher(rclpy_context, tmp_path, video_frames,
                                              reliable) -> None:
    """The default `image_qos: auto`: a reliable camera (image_source's kind) is subscribed
    reliably, so 1280x720 frames cross DDS without the loss best effort has here (the node
    receives every one of a 25 Hz stream); a best-effort camera is still heard."""
    node = NodeProcess("head_pose_node", params={"hri.enable": "off"}, log_dir=tmp_path)
    probe = Probe(f"qos_auto_{reliable}")
    qos = (QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE) if reliable
           else qos_profile_sensor_data)
    pub = probe.node.create_publisher(Image, "image", qos)
    probe.subscribe(FaceArray, "faces", QoSProfile(depth=50))
    probe.subscribe(DiagnosticArray, "/diagnostics")
    try:
        probe.wait_for_subscribers(pub)
        want = "subscribed reliable" if reliable else "subscribed best effort"
        if reliable:
            assert probe.spin_until(lambda: want in node.output(), 30), node.output()
        probe.wait_for_publishers(["faces"])
        # best effort loses most 1280x720 frames on loopback: the smaller ones get through
        frames = [np.ascontiguousarray(f if reliable else cv2.resize(f, (640, 360)))
                  for f in video_frames[:40]]
        if reliable:
            # the node's first frame plans its models (the detector's far look among them)
            # and takes many frame periods: a camera's keep-last history would overwrite
            # frames meanwhile, which is not what this test is about; once it has run,
            # every frame of a 25 Hz stream must arrive
            pub.publish(image_msg(frames[0], FRAME, stamp(99)))
            assert probe.spin_until(lambda: len(probe.received["faces"]) >= 1, 60), \
                node.output()[-2000:]
        primed = len(probe.received["faces"])
        for i, frame in enumerate(frames):
            pub.publish(image_msg(frame, FRAME, stamp(100 + i)))
            probe.spin_for(0.04)  # 25 Hz
        if reliable:  # every frame crossed DDS: the node counts each one it receives (it
            # may still skip one it is too busy for, which is not this test's business)
            assert probe.spin_until(lambda: _received(probe) >= 1 + len(frames), 60), \
                (_received(probe), node.output()[-2000:])
        assert probe.spin_until(lambda: len(probe.received["faces"]) >= primed + 1, 60), \
            node.output()[-2000:]
    finally:
        probe.destroy()
        assert node.stop() == 0
    if not reliable:
        assert "subscribed reliable" not in node.output()
