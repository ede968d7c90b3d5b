#!/usr/bin/env python3
"""What the far look costs: ``detector_input=auto`` against the near look alone (320x240).

Two tables, both measured in one process, the two settings taking turns:

1. **Per image**: ``estimator(image)`` on the test stills and a frame of the test video
   (as recorded, and resized to 640x480 and 1920x1080), median wall and CPU time per call.
2. **Tracked video**: a :class:`~dense_head_pose.video.tracking.FaceTracker` over the 720p
   test video played ``--loops`` times in a row (the far look runs on one detection in k,
   k = ceil(1.5 x its cost in near looks): a short clip may hold none after the first
   frame), mean wall and CPU time per frame (a mean, as the far look is one slow frame
   among many), and how many far looks ran.

Usage: python scripts/benchmark_detector_input.py [--repeat 5] [--loops 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator, images
from dense_head_pose.evaluation.benchmark import cpu_name, format_table
from dense_head_pose.pipeline.detection import TRAINED_INPUT
from dense_head_pose.video.sources import open_source
from dense_head_pose.video.tracking import FaceTracker

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
#: the near look alone (the detector before auto), and auto
SETTINGS = ("{}x{}".format(*TRAINED_INPUT), "auto")



def per_image(estimator: HeadPoseEstimator, named: dict, repeat: int) -> str:
    wall: dict = {}
    cpu: dict = {}
    faces: dict = {}
    for _ in range(repeat):
        for name, image in named.items():
            for setting in SETTINGS:
                estimator.configure(detector_input=setting)
                w0, c0 = time.perf_counter(), time.process_time()
                result = estimator(image)
                wall.setdefault((name, setting), []).append(time.perf_counter() - w0)
                cpu.setdefault((name, setting), []).append(time.process_time() - c0)
                faces[name, setting] = len(result.faces)
    rows = []
    for name, image in named.items():
        near, auto = (1e3 * float(np.median(wall[name, s])) for s in SETTINGS)
        near_cpu, auto_cpu = (1e3 * float(np.median(cpu[name, s])) for s in SETTINGS)
        rows.append([name, f"{image.shape[1]}x{image.shape[0]}", f"{near:.1f}",
                     f"{auto:.1f}", f"{auto / near:.2f}", f"{near_cpu:.1f} / {auto_cpu:.1f}",
                     f"{faces[name, '320x240']} / {faces[name, 'auto']}"])
    return format_table(rows, ["image", "size", "320x240 ms", "auto ms", "auto / 320x240",
                               "CPU ms (320x240 / auto)", "faces (320x240 / auto)"])


def tracked(estimator: HeadPoseEstimator, frames: list, repeat: int, loops: int) -> str:
    wall: dict = {s: [] for s in SETTINGS}
    cpu: dict = {s: [] for s in SETTINGS}
    far_looks: dict = {}
    played = frames * loops
    for _ in range(repeat):
        for setting in SETTINGS:
            estimator.configure(detector_input=setting)
            tracker = FaceTracker(estimator)
            calls = []
            detector = estimator.detector
            original = type(detector).__call__

            def counting(self, image, view="auto", far=True, _calls=calls, _f=original):
                _calls.append(far and self.far_size(image.shape[1], image.shape[0]) is not None)
                return _f(self, image, view, far)

            type(detector).__call__ = counting  # counts the far looks that ran
            try:
                w0, c0 = time.perf_counter(), time.process_time()
                for i, frame in enumerate(played):
                    tracker(frame, i / 30.0)
                wall[setting].append((time.perf_counter() - w0) / len(played))
                cpu[setting].append((time.process_time() - c0) / len(played))
            finally:
                type(detector).__call__ = original
            far_looks[setting] = sum(calls)
    near, auto = (1e3 * float(np.median(wall[s])) for s in SETTINGS)
    near_cpu, auto_cpu = (1e3 * float(np.median(cpu[s])) for s in SETTINGS)
    return format_table(
        [[f"talking_head.mp4 x{loops} ({len(played)} frames, 1280x720)", f"{near:.2f}",
          f"{auto:.2f}", f"{auto / near:.3f}", f"{near_cpu:.2f} / {auto_cpu:.2f}",
          f"{far_looks['320x240']} / {far_looks['auto']}"]],
        ["video", "320x240 ms / frame", "auto ms / frame", "auto / 320x240",
         "CPU ms / frame (320x240 / auto)", "far looks (320x240 / auto)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loops", type=int, default=3)
    args = parser.parse_args()
    estimator = HeadPoseEstimator.from_model_dir()
    with open_source(str(TESTDATA / "talking_head.mp4")) as source:
        frames = [f for _, f in source]
    named = {name: images.read(str(TESTDATA / name)) for name in
             ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg")}
    named["talking_head.mp4 frame"] = frames[0]
    for size in ((640, 480), (1920, 1080)):  # robot cameras' other sizes
        named[f"talking_head.mp4 frame at {size[0]}x{size[1]}"] = cv2.resize(frames[0], size)
    print(f"CPU: {cpu_name()}; one LiteRT thread; medians of {args.repeat} runs")
    print("\n1. Per image (estimator(image): detection, alignment, pose)")
    print(per_image(estimator, named, args.repeat))
    print("\n2. Tracked video (FaceTracker, defaults)")
    print(tracked(estimator, frames, args.repeat, args.loops))


if __name__ == "__main__":
    main()
