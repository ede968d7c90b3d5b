#!/usr/bin/env python3
"""Latency and rate of head_pose_node over DDS, between real processes on loopback.

The node runs as its own process (the colcon-installed executable); this script publishes
frames of talking_head.mp4 (resized to each size) with a reliable publisher and measures, per
frame, image publish -> head_pose received. Two runs per size:

* closed loop: the next frame goes out when the previous pose arrived; gives the end-to-end
  latency (median, p95) and the highest rate one camera could be served at;
* open loop at --rate Hz for --seconds: the sustained rate of poses received and how many
  frames the node skipped because a newer one was waiting.

Each is done with only /head_pose subscribed and with every output subscribed (faces,
head_poses, landmarks, points, mesh marker, mesh image, tf; taken as serialized bytes, so the
measuring process does not compete for the 2 cores by decoding them in Python), so the lazy
outputs show their cost. The node's own time per frame (its /diagnostics) is given beside, to
tell node time from transport time.

Usage (after `make test` built the workspace):
    source .colcon/kilted/install/setup.bash && python scripts/benchmark_ros.py [--frames 150]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(100, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.msg import FaceArray
from dense_head_pose.video.sources import open_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test_support"))
from dhp_test_support.ros import NodeProcess, Probe, camera_info_msg, image_msg, stamp

STAGES = ("estimate", "faces", "tf", "landmarks", "points", "mesh", "image_draw",
          "image_publish")
ALL_OUTPUTS = {"faces": FaceArray, "head_poses": PoseArray, "face_landmarks": MarkerArray,
               "face_points": PointCloud2, "face_mesh": Marker, "mesh_image": Image}


def _ns(t) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


COMPRESSED = [False]  # set from --input


def run(frames: list[np.ndarray], size: tuple[int, int], everything: bool, n_frames: int,
        rate: float, seconds: float, log_dir: Path) -> dict:
    compressed = COMPRESSED[0]
    node = NodeProcess("head_pose_node", params={
        "image_qos": "reliable", "input_transport": "compressed" if compressed else "raw"},
        log_dir=log_dir)
    probe = Probe(f"bench_{time.time_ns()}")
    received: dict[int, float] = {}
    probe.node.create_subscription(
        PoseStamped, "head_pose", lambda m: received.setdefault(_ns(m.header.stamp),
                                                                time.perf_counter()), 10)
    probe.subscribe(DiagnosticArray, "/diagnostics")
    if everything:  # taken serialized, as `ros2 bag record` or a C++ rviz2 would cost little
        for topic, msg_type in ALL_OUTPUTS.items():
            probe.subscribe(msg_type, topic, raw=True)
        try:
            from tf2_msgs.msg import TFMessage

            probe.subscribe(TFMessage, "/tf", raw=True)
        except ImportError:
            pass
    pub = (probe.publisher(CompressedImage, "image/compressed") if compressed
           else probe.publisher(Image, "image"))
    info_pub = probe.publisher(CameraInfo, "camera_info")
    probe.wait_for_subscribers(pub)
    probe.wait_for_publishers(["head_pose", *(ALL_OUTPUTS if everything else [])])
    w, h = size
    msgs = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    jpegs = [cv2.imencode(".jpg", m, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for m in msgs]
    sent: dict[int, float] = {}
    counter = [1]

    def publish(i: int) -> int:
        t = stamp(counter[0], 0)
        counter[0] += 1
        info_pub.publish(camera_info_msg(w, w, w / 2, h / 2, w, h, "cam", t))
        if compressed:  # JPEG, as a camera driver's compressed stream (encoded by it)
            msg = CompressedImage(header=Header(stamp=t, frame_id="cam"), format="jpeg")
            msg.data = jpegs[i % len(jpegs)]
        else:
            msg = image_msg(msgs[i % len(msgs)], "cam", t)
        sent[_ns(t)] = time.perf_counter()
        pub.publish(msg)
        return _ns(t)

    for i in range(5):  # warm-up
        key = publish(i)
        probe.spin_until(lambda k=key: k in received, 10)
    latencies = []
    start = time.perf_counter()
    for i in range(n_frames):
        key = publish(i)
        if probe.spin_until(lambda k=key: k in received, 10):
            latencies.append((received[key] - sent[key]) * 1e3)
    closed_rate = len(latencies) / (time.perf_counter() - start)

    before = len(received)
    period = 1.0 / rate
    start = time.perf_counter()
    next_t = start
    published = 0
    while time.perf_counter() - start < seconds:
        publish(published)
        published += 1
        next_t += period
        while time.perf_counter() < next_t:
            rclpy.spin_once(probe.node, timeout_sec=max(0.0, next_t - time.perf_counter()))
    probe.spin_for(0.5)
    open_received = len(received) - before
    diag = probe.received["/diagnostics"]
    values = {kv.key: kv.value for kv in diag[-1].status[0].values} if diag else {}
    probe.destroy()
    node.stop()
    return {
        "size": f"{w}x{h}", "outputs": "all" if everything else "head_pose only",
        "latency_median_ms": float(np.median(latencies)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "closed_loop_fps": closed_rate,
        "open_loop_sent": published, "open_loop_received": open_received,
        "open_loop_fps": open_received / seconds,
        "node_processing_ms": float(values.get("processing_ms_median", "nan")),
        "stages": {k.removeprefix("stage_ms_median_"): float(v) for k, v in values.items()
                   if k.startswith("stage_ms_median_")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "testdata"))
    parser.add_argument("--frames", type=int, default=150, help="closed-loop frames per run")
    parser.add_argument("--rate", type=float, default=30.0, help="open-loop publish rate")
    parser.add_argument("--seconds", type=float, default=5.0, help="open-loop duration")
    parser.add_argument("--sizes", default="640x480,1280x720", help="frame sizes, WxH,...")
    parser.add_argument("--input", default="raw", choices=("raw", "compressed"),
                        help="raw images, or JPEG (quality 90) on image/compressed")
    parser.add_argument("--outputs", default="head_pose,all", help="head_pose, all or both")
    parser.add_argument("--dds", default="default", choices=("default", "shm", "large_data"),
                        help="Fast DDS transports of both processes: the default, "
                             "config/fastdds_shm.xml, or FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA")
    args = parser.parse_args()
    if args.dds == "shm":
        profile = str(Path(__file__).resolve().parents[1] / "config" / "fastdds_shm.xml")
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = profile
    elif args.dds == "large_data":
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    COMPRESSED[0] = args.input == "compressed"
    which = [o == "all" for o in args.outputs.split(",")]
    with open_source(str(Path(args.testdata) / "talking_head.mp4")) as source:
        frames = [f for _, f in source]
    rclpy.init()
    rows, stage_rows = [], []
    log_dir = Path("/tmp")
    try:
        for size in sizes:
            for everything in which:
                r = run(frames, size, everything, args.frames, args.rate, args.seconds, log_dir)
                rows.append((r["size"], r["outputs"], f"{r['latency_median_ms']:.1f}",
                             f"{r['latency_p95_ms']:.1f}", f"{r['closed_loop_fps']:.1f}",
                             f"{r['open_loop_fps']:.1f} of {args.rate:.0f}",
                             f"{r['node_processing_ms']:.1f}"))
                print(rows[-1], file=sys.stderr)
                stage_rows.append((r["size"], r["outputs"], *(
                    f"{r['stages'].get(k, float('nan')):.1f}" for k in STAGES)))
    finally:
        rclpy.try_shutdown()
    print(format_table(rows, ("frame", "subscribed", "latency median ms", "latency p95 ms",
                              "closed-loop fps", f"poses/s at {args.rate:.0f} Hz",
                              "node processing median ms")))
    print()
    print("Inside the node, median ms per frame (build + publish of each output):")
    print(format_table(stage_rows, ("frame", "subscribed", *STAGES)))


if __name__ == "__main__":
    main()
