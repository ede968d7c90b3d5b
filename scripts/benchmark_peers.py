#!/usr/bin/env python3
"""This project against what users would pick instead, on the same frames, in one process.

Systems, each with one thread where it can be told so, interleaved frame by frame over the
decoded frames of a video (default: ../shared/testdata/talking_head.mp4):

* dense_head_pose per image: one pass averaged with its mirrored crop (two inferences), one
  plain pass (``mirror=False``) and the int8 regressor (when built), each detecting with the
  near look alone (``detector_input=320x240``, the detector MediaPipe's short-range static
  mode compares with), and the default ``detector_input=auto`` (with the far look for
  small faces); tracked and smoothed (``FaceTracker``, its video mode, defaults),
  float32 and int8; 68 landmarks;
* MediaPipe's legacy FaceMesh (``mediapipe==0.10.21``, whose wheel carries its models), in
  static-image mode and in tracking mode, 468 landmarks;
* dlib's HOG detector with its 68-point shape predictor (``dlib-bin`` and
  ``face-recognition-models``).

Printed: median and 95th-percentile milliseconds per frame, median CPU milliseconds (a
system that spreads its work over threads costs more CPU than wall), the ratio to dense_head_pose's
default median, the resident memory each added when it was loaded, the frames where it found
no face, and its landmark jitter: per pair of consecutive frames, the residual after the best
2D similarity transform between the two frames' landmarks (so head motion is not counted),
divided by the outer-eye distance; the median over frame pairs.

The peers are an optional extra: ``pip install .[peers]`` (best in a venv of its own:
mediapipe 0.10.21 wants numpy 1.x and OpenCV 4).

Usage: python scripts/benchmark_peers.py [--video PATH] [--repeat 2] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator, ModelError
from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.evaluation.jitter import similarity_residual
from dense_head_pose.pipeline.detection import TRAINED_INPUT
from dense_head_pose.video.sources import open_source

SHARED = Path(__file__).resolve().parents[2] / "shared"
BASELINE = "dense_head_pose (1 pass + mirror, near look)"
#: the detector's near look alone, the per-image rows' detector (see the module doc)
NEAR_LOOK = "{}x{}".format(*TRAINED_INPUT)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def systems() -> dict[str, tuple[Callable[[], Callable[[np.ndarray], np.ndarray | None]],
                                 tuple[int, int]]]:
    """name -> (factory of a per-frame function returning (N, 2) landmarks or None, the
    indices of the outer eye corners)."""
    out = {}

    def ours(mirror: bool, precision: str = "float32", detector_input: str = NEAR_LOOK):
        def make():
            estimator = HeadPoseEstimator.from_model_dir(mirror=mirror, num_threads=1,
                                                         precision=precision,
                                                         detector_input=detector_input)

            def run(frame):
                faces = estimator(frame).faces
                return faces[0].landmarks[:, :2] if faces else None
            return run
        return make

    def tracked(precision: str = "float32"):
        def make():
            from dense_head_pose import FaceTracker

            tracker = FaceTracker(HeadPoseEstimator.from_model_dir(num_threads=1,
                                                                   precision=precision))
            clock = iter(range(10**9))

            def run(frame):
                faces = tracker(frame, next(clock) / 25.0).faces
                return faces[0].landmarks[:, :2] if faces else None
            return run
        return make

    out[BASELINE] = (ours(True), (36, 45))
    out["dense_head_pose (1 plain pass, near look)"] = (ours(False), (36, 45))
    out["dense_head_pose (default: 1 pass + mirror, auto)"] = (ours(True, detector_input="auto"),
                                                               (36, 45))
    try:
        HeadPoseEstimator.from_model_dir(precision="int8")
        int8 = True
    except ModelError:
        int8 = False
        print("no int8 regressor: dense-head-pose models build --precision int8 ...")
    if int8:
        out["dense_head_pose (int8, 1 pass + mirror, near look)"] = (ours(True, "int8"), (36, 45))
    out["dense_head_pose (tracked, smoothed)"] = (tracked(), (36, 45))
    if int8:
        out["dense_head_pose (tracked, smoothed, int8)"] = (tracked("int8"), (36, 45))
    try:
        import mediapipe as mp

        def mesh(static: bool):
            def make():
                model = mp.solutions.face_mesh.FaceMesh(static_image_mode=static,
                                                        max_num_faces=1)

                def run(frame):
                    h, w = frame.shape[:2]
                    found = model.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                    if not found.multi_face_landmarks:
                        return None
                    return np.array([(p.x * w, p.y * h) for p in
                                     found.multi_face_landmarks[0].landmark])
                return run
            return make

        out["MediaPipe FaceMesh (static)"] = (mesh(True), (33, 263))
        out["MediaPipe FaceMesh (tracking)"] = (mesh(False), (33, 263))
    except ImportError:
        print("mediapipe not installed: pip install .[peers]")
    try:
        import dlib
        import face_recognition_models

        def make_dlib():
            detector = dlib.get_frontal_face_detector()
            predictor = dlib.shape_predictor(
                face_recognition_models.pose_predictor_model_location())

            def run(frame):
                grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                boxes = detector(grey, 0)
                if not boxes:
                    return None
                shape = predictor(grey, max(boxes, key=lambda r: r.area()))
                return np.array([(p.x, p.y) for p in shape.parts()], float)
            return run

        out["dlib HOG + 68 points"] = (make_dlib, (36, 45))
    except ImportError:
        print("dlib / face_recognition_models not installed: pip install .[peers]")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SHARED / "testdata" / "talking_head.mp4"))
    parser.add_argument("--repeat", type=int, default=2, help="passes over the frames")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with open_source(args.video) as source:
        frames = [f for _, f in source]
    runners, memory, eyes = {}, {}, {}
    for name, (factory, eye) in systems().items():
        before = rss_mb()
        runners[name] = factory()
        runners[name](frames[0])  # lazy initialisation happens here for some
        memory[name] = rss_mb() - before
        eyes[name] = eye
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    landmarks: dict[str, list] = {name: [] for name in runners}
    for r in range(args.repeat):
        for frame in frames:
            for name, run in runners.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                points = run(frame)
                times[name].append((time.perf_counter() - start) * 1e3)
                cpu[name].append((time.process_time() - start_cpu) * 1e3)
                if r == 0:
                    landmarks[name].append(points)
    base = float(np.median(times[BASELINE]))
    rows, report = [], {}
    for name in runners:
        pts = landmarks[name]
        jitter = []
        for a, b in itertools.pairwise(pts):
            if a is not None and b is not None:
                i, j = eyes[name]
                jitter.append(similarity_residual(a, b) / np.linalg.norm(b[i] - b[j]))
        median = float(np.median(times[name]))
        report[name] = {"median_ms": median, "p95_ms": float(np.percentile(times[name], 95)),
                        "cpu_median_ms": float(np.median(cpu[name])),
                        "ratio": median / base, "memory_mb": memory[name],
                        "missed": sum(p is None for p in pts),
                        "jitter_pct": float(np.median(jitter)) * 100 if jitter else None}
        e = report[name]
        rows.append((name, f"{e['median_ms']:.2f}", f"{e['p95_ms']:.2f}",
                     f"{e['cpu_median_ms']:.2f}", f"{e['ratio']:.2f}",
                     f"{e['memory_mb']:.0f}", f"{e['missed']}/{len(pts)}",
                     f"{e['jitter_pct']:.2f}" if e["jitter_pct"] is not None else "-"))
    if args.json:
        print(json.dumps(report))
        return
    h, w = frames[0].shape[:2]
    print(f"{Path(args.video).name}: {len(frames)} frames of {w}x{h}, {args.repeat} passes, "
          "systems interleaved frame by frame")
    print(format_table(rows, ("system", "median ms", "p95 ms", "CPU median ms",
                              "/ ours (per image, near look)",
                              "memory MB", "frames missed", "jitter % eye distance")))


if __name__ == "__main__":
    main()
