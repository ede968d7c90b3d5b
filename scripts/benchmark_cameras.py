#!/usr/bin/env python3
"""Several cameras on one machine: ``multi_camera.launch.py`` with one and then two cameras,
each fed 640x480 frames at 30 Hz, ``/<camera>/head_pose`` subscribed.

The cameras are played by this process (a reliable publisher each, as a driver on the same
machine; frames of talking_head.mp4 cropped to 4:3, the second camera's mirrored, stamped
at 30 Hz and paced evenly). It measures, per camera, the rate of frames served (``faces``,
one per frame), of head poses (frames with a face), the frames the node dropped (its
/diagnostics), and the CPU time of every launched process (the nodes and
hri_tracked_merger) over the same window, so the cost of the second camera shows as a ratio
to one camera's measured in the same run. The merged /humans/faces/tracked is checked to
hold both cameras' faces.

Usage (after `make test` built the workspace):
    eval "$(make -s env)" && python scripts/benchmark_cameras.py [--seconds 20] [--dds shm]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(100, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.msg import FaceArray
from dense_head_pose.video.sources import open_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test_support"))
from dhp_test_support.ros import Launch, Probe, camera_info_msg, image_msg, stamp

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "talking_head.mp4"


def frames_640x480(n: int) -> list[np.ndarray]:
    """``n`` frames of the test video, centre-cropped to 4:3 and resized to 640x480."""
    out = []
    for _, frame in open_source(str(VIDEO)):
        h, w = frame.shape[:2]
        x0 = (w - h * 4 // 3) // 2
        out.append(cv2.resize(frame[:, x0:x0 + h * 4 // 3], (640, 480),
                              interpolation=cv2.INTER_AREA))
        if len(out) == n:
            break
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(names: list[str], frames: list[np.ndarray], seconds: float, log_dir: Path) -> list:
    """Launch ``names`` cameras, feed them for ``seconds``; one result row per camera."""
    launch = Launch("multi_camera.launch.py", f"cameras:={' '.join(names)}",
                    "image_qos:=reliable", log_dir=log_dir)
    probe = Probe(f"cameras_bench_{len(names)}_{time.time_ns()}")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # rclpy default
    try:
        cams = {}
        for name in names:
            cams[name] = (probe.publisher(Image, f"/{name}/image_raw", qos),
                          probe.publisher(CameraInfo, f"/{name}/camera_info", qos))
            probe.subscribe(PoseStamped, f"/{name}/head_pose")
            probe.subscribe(FaceArray, f"/{name}/faces")
        probe.subscribe(DiagnosticArray, "/diagnostics")
        from hri_msgs.msg import IdsList

        probe.subscribe(IdsList, "/humans/faces/tracked")
        for image_pub, _ in cams.values():
            probe.wait_for_subscribers(image_pub, timeout=60)
        probe.wait_for_publishers([f"/{n}/head_pose" for n in names], timeout=60)

        def feed(duration: float) -> int:
            start, i = time.monotonic(), 0
            while time.monotonic() - start < duration:
                t = stamp(1000 + i // 30, (i % 30) * 33_333_333)
                for k, (name, (image_pub, info_pub)) in enumerate(cams.items()):
                    frame = frames[i % len(frames)]
                    frame = frame[:, ::-1] if k % 2 else frame
                    info_pub.publish(camera_info_msg(600.0, 600.0, 320.0, 240.0, 640, 480,
                                                     f"{name}_optical", t))
                    image_pub.publish(image_msg(np.ascontiguousarray(frame),
                                                f"{name}_optical", t))
                i += 1
                probe.spin_to(start + i / 30.0)
            return i

        feed(3.0)  # warm-up: tracks made, every pool filled
        pids = {label: pid for label, pid in launch.labelled().items()}
        probe.clear()
        cpu0 = {label: cpu_seconds(pid) for label, pid in pids.items()}
        t0 = time.monotonic()
        sent = feed(seconds)
        probe.spin_for(0.3)
        wall = time.monotonic() - t0
        cpu = {label: (cpu_seconds(pid) - cpu0[label]) / wall for label, pid in pids.items()}
        diags = {}
        for msg in probe.received["/diagnostics"]:
            for status in msg.status:
                diags[status.name.split(":")[0]] = {kv.key: kv.value for kv in status.values}
        tracked = [list(m.ids) for m in probe.received["/humans/faces/tracked"]]
        both = sum(1 for ids in tracked if all(any(i.startswith(f"{n}_") for i in ids)
                                                for n in names))
        rows = []
        for k, name in enumerate(names):
            poses = len(probe.received[f"/{name}/head_pose"])
            served = len(probe.received[f"/{name}/faces"])
            d = diags.get(f"{name}/head_pose_node", {})
            label = f"head_pose_node-{k + 1}"
            rows.append([f"{len(names)} camera(s)", name, f"{sent / wall:.1f}",
                         f"{served / wall:.1f}", f"{poses / wall:.1f}",
                         d.get("frames_dropped", "?"),
                         d.get("processing_ms_median", "?"),
                         f"{cpu.get(label, float('nan')) * 100:.0f}"])
        merger = cpu.get("hri_tracked_merger-" + str(len(names) + 1), float("nan"))
        return rows, sum(cpu.values()), merger, (both, len(tracked))
    finally:
        probe.destroy()
        launch.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--dds", default="default", choices=("default", "shm"),
                        help="Fast DDS transports of every process: the default (UDP on "
                             "loopback) or config/fastdds_shm.xml (shared memory)")
    args = parser.parse_args()
    if args.dds == "shm":  # inherited by ros2 launch and its nodes
        profile = str(Path(__file__).resolve().parents[1] / "config" / "fastdds_shm.xml")
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = profile
    rclpy.init()
    frames = frames_640x480(150)
    rows, totals = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for names in (["front"], ["front", "back"]):
            camera_rows, total, merger, (both, lists) = run(names, frames, args.seconds,
                                                            Path(tmp))
            rows += camera_rows
            totals.append((len(names), total, merger, both, lists))
    print(format_table(rows, ["run", "camera", "frames in (Hz)", "faces out (Hz)",
                              "head_pose (Hz)",
                              "dropped (total)", "node ms (median)", "node CPU (% of a core)"]))
    print()
    one = totals[0][1]
    print(format_table(
        [[n, f"{t * 100:.0f}", f"{t / one:.2f}", f"{m * 100:.1f}", f"{b} of {n_lists}"]
         for n, t, m, b, n_lists in totals],
        ["cameras", "CPU of all launched processes (% of a core)", "ratio to one camera",
         "merger CPU (%)", "merged lists holding every camera's face"]))
    rclpy.shutdown()


if __name__ == "__main__":
    main()
