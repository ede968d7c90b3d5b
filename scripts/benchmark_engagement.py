#!/usr/bin/env python3
"""What attention and engagement add to the node's time per frame, with 1 and with 8 faces.

Frames: the test image's face (one face), and eight faces tiled on a 1280x720 canvas (the
test images' faces, some mirrored), each played as a still clip with a small shift per frame
through the tracker the node uses (``TrackerPool``, its defaults). Per frame, interleaved in
this process: the tracker (and each face's pose, which the node's outputs compute anyway),
then the node's attention work on its faces (each face's mutual gaze with the camera for
``FaceArray``, its gaze frame, who looks at whom, and the Gaze messages built with rclpy's
classes when rclpy is installed, else with rosbags'), and one engagement tick every third
frame (the node ticks at 10 Hz on a 30 fps camera; the EngagementLevel messages built too).
Publishing over DDS is left out (a few tens of microseconds per small message; the node's
``/diagnostics`` report ``stage_ms_median_engagement`` with it).

Printed: medians in milliseconds and the ratio of attention to the tracker's time.

Usage: python scripts/benchmark_engagement.py [--frames 150] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator
from dense_head_pose.attention.engagement import EngagementOptions
from dense_head_pose.attention.gazing import camera_mutual_gaze, gaze_poses, gazes
from dense_head_pose.attention.people import Engagement
from dense_head_pose.attention.person_ids import anonymous_person_id
from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.interfaces import messages
from dense_head_pose.pipeline.pose import CameraIntrinsics
from dense_head_pose.video.streams import TrackerPool
from dense_head_pose.video.tracking import TrackerOptions

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def _types():
    try:
        from dense_head_pose.ros.conversions import rclpy_types

        rclpy_types("hri_msgs/msg/Gaze")
        return rclpy_types, "rclpy"
    except ImportError:
        from dense_head_pose.recordings.bag_types import typestore

        store, _ = typestore()
        return store.types.__getitem__, "rosbags"


def _scenes(estimator: HeadPoseEstimator) -> dict[str, np.ndarray]:
    """One face as it is; eight faces cut from the test images and tiled 4x2 on 720p."""
    one = cv2.imread(str(TESTDATA / "one_face.jpg"))
    crops = []
    for name in ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg"):
        image = cv2.imread(str(TESTDATA / name))
        for face in estimator(image).faces:
            x1, y1, x2, y2 = (int(v) for v in face.box[:4])
            w, h = x2 - x1, y2 - y1
            crop = image[max(0, y1 - h // 2):y2 + h // 4, max(0, x1 - w // 3):x2 + w // 3]
            crops.append(cv2.resize(crop, (300, 340)))
    crops = (crops + [c[:, ::-1] for c in crops])[:8]
    canvas = np.zeros((720, 1280, 3), np.uint8)
    for i, crop in enumerate(crops):
        y, x = 10 + (i // 4) * 355, 10 + (i % 4) * 318
        canvas[y:y + 340, x:x + 300] = crop
    return {"1 face": one, "8 faces": canvas}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    estimator = HeadPoseEstimator.from_model_dir()
    types, kind = _types()
    options = EngagementOptions()
    results = []
    scenes = _scenes(estimator)
    pools = {n: TrackerPool(estimator, TrackerOptions()) for n in scenes}
    engagements = {n: Engagement(options) for n in scenes}
    times: dict[str, dict[str, list[float]]] = {n: {"tracker": [], "attention": []}
                                                for n in scenes}
    counts = {}
    header = messages.header(types, messages.time_of(types, 0), "camera")  # the image's
    for k in range(args.frames):
        for name, image in scenes.items():  # interleaved
            frame = np.roll(image, k % 3, axis=1)
            h, w = frame.shape[:2]
            t0 = time.perf_counter()
            faces = pools[name](frame, k / 30.0, CameraIntrinsics.default(w, h)).faces
            for face in faces:
                _ = face.pose  # the node's faces output computes it anyway
            t1 = time.perf_counter()
            scores = [camera_mutual_gaze(face, options) for face in faces]  # FaceArray's
            names = [f"f{f.id}" for f in faces]
            poses = gaze_poses(faces, names)
            out = [messages.gaze(types, header, anonymous_person_id(s),
                                 anonymous_person_id(r) if r else "")
                   for s, r in gazes(poses, options)]
            if k % 3 == 0:
                hdr = messages.header(types, messages.time_of(types, k), "")
                levels = engagements[name].tick({anonymous_person_id(n): poses.get(n)
                                                 for n in names})
                out += [messages.engagement_level(types, hdr, v) for v in levels.values()]
            t2 = time.perf_counter()
            assert len(scores) == len(faces)
            if k >= 10:  # past the first detections
                times[name]["tracker"].append((t1 - t0) * 1e3)
                times[name]["attention"].append((t2 - t1) * 1e3)
            counts[name] = len(faces)
    for name in scenes:
        tracker = statistics.median(times[name]["tracker"])
        attention = statistics.median(times[name]["attention"])
        results.append({"scene": name, "faces": counts[name], "tracker_ms": round(tracker, 3),
                        "attention_ms": round(attention, 4),
                        "ratio_pct": round(100 * attention / tracker, 2), "messages": kind})
    if args.json:
        print(json.dumps(results))
        return
    columns = ["scene", "faces", "tracker_ms", "attention_ms", "ratio_pct", "messages"]
    print(format_table([[r[c] for c in columns] for r in results], columns))


if __name__ == "__main__":
    main()
