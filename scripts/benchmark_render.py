#!/usr/bin/env python3
"""Time the native mesh renderer against the numpy reference, one dense face per frame.

A real face (the first frame of talking_head.mp4, 38,365 vertices, 76,073 triangles) is scaled
so that the mesh fills a third of the frame height, centred, over the video frame resized to
640x480 and 1280x720. Each renderer draws it repeatedly on one core; the table gives median
and 95th percentile milliseconds.

Usage: python scripts/benchmark_render.py [--testdata DIR] [--repeat 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator, render_reference
from dense_head_pose.benchmark import format_table, summarise
from dense_head_pose.render import MeshRenderer
from dense_head_pose.video import open_source


def _time(fn, repeat: int) -> dict[str, float]:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return summarise(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "testdata"))
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with open_source(str(Path(args.testdata) / "talking_head.mp4")) as source:
        frame = next(iter(source))[1]
    estimator = HeadPoseEstimator.from_model_dir()
    face = estimator(frame, dense=True).faces[0]
    triangles = estimator.model.triangles
    renderer = MeshRenderer()
    rows, results = [], []
    for width, height in ((640, 480), (1280, 720)):
        background = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        v = face.vertices.copy()
        centre = (v.min(0) + v.max(0)) / 2
        scale = (height / 3) / np.ptp(v[:, 1])
        v = ((v - centre) * scale + np.array([width / 2, height / 2, 0])).astype(np.float32)
        canvas = background.copy()
        native = _time(lambda: renderer.render(canvas, v, triangles), args.repeat)  # noqa: B023
        reference = _time(lambda: render_reference.render(canvas, [v], triangles),  # noqa: B023
                          max(3, args.repeat // 30))
        results.append({"frame": [width, height], "face_height_px": round(height / 3),
                        "native": native, "numpy_reference": reference})
        rows.append((f"{width}x{height}", round(height / 3), f"{native['median_ms']:.2f}",
                     f"{native['p95_ms']:.2f}", f"{reference['median_ms']:.1f}",
                     f"{reference['median_ms'] / native['median_ms']:.0f}x"))
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(rows, ("frame", "face px", "native median ms", "native p95 ms",
                                  "numpy median ms", "speed-up")))


if __name__ == "__main__":
    main()
