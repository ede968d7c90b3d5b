#!/usr/bin/env python3
"""Time the native mesh renderer on the real meshes of the test video, optionally against
the renderer of Dense-Head-Pose-Estimation (``--reference-lib``: its ``render.c`` built as a
shared library outside this repository).

Every frame of talking_head.mp4 is estimated once; its dense face (38,365 vertices, 76,073
triangles) is drawn over the frame at 1280x720 and over the frame resized to 640x480 (the mesh
scaled alike). Renderers alternate frame by frame in this process, one core, and the table
gives medians, 95th percentiles and the ratio to the seed's renderer.

``--seed-lib PATH``: a build of the seed's ``render.c`` (Dense-Head-Pose-Estimation, MIT),
which is not part of this repository: ``gcc -shared -O3 -fPIC render.c -o librender.so``.
Its ``_render(vertices, n, triangles * 3, n_tri, light, directional, ambient, image, h, w, c)``
keeps its own depth buffer from 0 upwards, so it gets the same mesh with depth shifted to be
positive, and it allocates its buffers per call, as it does in the seed.

Usage: python scripts/benchmark_render.py [--seed-lib PATH] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import time
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator
from dense_head_pose.evaluation.benchmark import format_table, summarise
from dense_head_pose.pipeline.render import MeshRenderer
from dense_head_pose.video.sources import open_source

SIZES = ((640, 480), (1280, 720))


def _seed(path: str):
    lib = ctypes.CDLL(path)
    fn = lib._render
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                   ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                   ctypes.c_int, ctypes.c_int, ctypes.c_int]
    light = np.array([1, 1, 5], np.float32)  # the seed's defaults
    directional = np.array([0.6, 0.6, 0.6], np.float32)
    ambient = np.array([0.6, 0.5, 0.4], np.float32)

    def render(image: np.ndarray, vertices: np.ndarray, flat_triangles: np.ndarray) -> None:
        v = vertices.copy()
        v[:, 2] -= v[:, 2].min() - 1.0  # its depth buffer starts at 0
        fn(v.ctypes.data, len(v), flat_triangles.ctypes.data, len(flat_triangles) // 3,
           light.ctypes.data, directional.ctypes.data, ambient.ctypes.data, image.ctypes.data,
           image.shape[0], image.shape[1], 3)

    return render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "testdata"))
    parser.add_argument("--reference-lib", "--seed-lib", dest="seed_lib",
                        help="Dense-Head-Pose-Estimation's render.c built as a shared library")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the video")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    estimator = HeadPoseEstimator.from_model_dir()
    triangles = estimator.model.triangles
    flat = np.ascontiguousarray(triangles.reshape(-1) * 3, dtype=np.int32)
    with open_source(str(Path(args.testdata) / "talking_head.mp4")) as source:
        frames = [f for _, f in source]
    jobs = []  # (size, background, vertices)
    for frame in frames:
        face = estimator(frame, dense=True).faces[0]
        for width, height in SIZES:
            scale = width / frame.shape[1]
            background = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            jobs.append(((width, height), background,
                         np.ascontiguousarray(face.vertices * scale, dtype=np.float32)))
    renderer = MeshRenderer()
    seed = _seed(args.seed_lib) if args.seed_lib else None
    samples: dict = {size: {"native": [], "seed": []} for size in SIZES}
    for _ in range(args.repeat):
        for size, background, vertices in jobs:
            canvas = background.copy()
            start = time.perf_counter()
            renderer.render(canvas, vertices, triangles)
            samples[size]["native"].append((time.perf_counter() - start) * 1e3)
            if seed is not None:
                canvas = background.copy()
                start = time.perf_counter()
                seed(canvas, vertices, flat)
                samples[size]["seed"].append((time.perf_counter() - start) * 1e3)
    rows, results = [], []
    for size in SIZES:
        native = summarise(samples[size]["native"])
        seed_stats = summarise(samples[size]["seed"]) if seed is not None else None
        ratio = (native["median_ms"] / seed_stats["median_ms"]) if seed_stats else None
        results.append({"frame": list(size), "native": native, "reference": seed_stats,
                         "native_over_reference": ratio})
        rows.append((f"{size[0]}x{size[1]}", f"{native['median_ms']:.2f}",
                     f"{native['p95_ms']:.2f}",
                     f"{seed_stats['median_ms']:.2f}" if seed_stats else "-",
                     f"{ratio:.2f}" if ratio else "-"))
    if args.json:
        print(json.dumps(results))
    else:
        print(f"{len(frames)} video frames x {args.repeat} passes, renderers alternating")
        print(format_table(rows, ("frame", "native median ms", "native p95 ms",
                                  "reference median ms", "native / reference")))


if __name__ == "__main__":
    main()
