#!/usr/bin/env python3
"""Which detector and input size find faces across the room: recall, false boxes and cost.

AFLW2000-3D's images under the distance protocol (``dense_head_pose.evaluation.aflw2000.
Distance``: each face scaled to a given size, centred on a grey canvas of a camera's size),
and at full size; for each detector of the pack and each input size, the faces missed (no
box holds the labels' centre), the other boxes, and the detector's time per image
(preprocessing, inference and decoding; the mirrored retry included where it runs). The
configurations take turns image by image, so the machine's load falls on all alike.

``--mediapipe`` adds MediaPipe's face detector in its full-range mode (``model_selection=1``,
made for faces up to five metres away; the legacy solution of ``mediapipe==0.10.21``, an
optional extra: ``pip install .[peers]``), at its default confidence 0.5.

Usage: python scripts/evaluate_detector_inputs.py ../shared/benchmarks/AFLW2000
           [--stride 5] [--detectors rfb320 rfb640] [--inputs 320x240 640x480 auto]
           [--mediapipe]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np

from dense_head_pose import model_pack
from dense_head_pose.evaluation.aflw2000 import Distance, load_aflw2000
from dense_head_pose.evaluation.benchmark import cpu_name, format_table
from dense_head_pose.images import read
from dense_head_pose.pipeline.detection import DETECTOR_FILES, FaceDetector, parse_input_size

SETTINGS = ((None, None), ((1280, 720), 95), ((1280, 720), 57), ((1280, 720), 38),
            ((640, 480), 95), ((640, 480), 57), ((640, 480), 38), ((640, 480), 29),
            ((640, 480), 25))


@dataclass
class Box:
    box: np.ndarray


class MediaPipeFullRange:
    """MediaPipe's full-range face detector with the call shape of ``FaceDetector``."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._model = mp.solutions.face_detection.FaceDetection(model_selection=1)

    def __call__(self, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        found = self._model.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        boxes = []
        for detection in found.detections or ():
            rel = detection.location_data.relative_bounding_box
            boxes.append(Box(np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w,
                                       (rel.ymin + rel.height) * h])))
        return boxes


def holds_face(box: np.ndarray, landmarks: np.ndarray) -> bool:
    centre = landmarks.mean(axis=0)
    return bool(box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--offset", type=int, default=0,
                        help="start at this image (every stride-th from it): with --offset 7 "
                        "--stride 10, images the far look was not tuned on (held out)")
    parser.add_argument("--models", default=None)
    parser.add_argument("--detectors", nargs="+", default=list(DETECTOR_FILES))
    parser.add_argument("--inputs", nargs="+", default=["320x240", "640x480", "auto"])
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--mediapipe", action="store_true",
                        help="add MediaPipe's full-range face detector (pip install .[peers])")
    args = parser.parse_args()
    samples = load_aflw2000(args.directory)[args.offset::args.stride]
    pack = model_pack.locate(args.models)
    configs = {(d, i): FaceDetector(pack / DETECTOR_FILES[d], 1, args.threshold,
                                    input_size=parse_input_size(i))
               for d in args.detectors for i in args.inputs}
    if args.mediapipe:
        configs["MediaPipe full-range", "own"] = MediaPipeFullRange()
    missed: dict = defaultdict(int)
    other: dict = defaultdict(int)
    seconds: dict = defaultdict(list)
    for number, sample in enumerate(samples):
        image = read(str(sample.path))
        for canvas, size in SETTINGS:
            shown, labels = (image, sample) if canvas is None else \
                Distance(size, canvas).apply(image, sample)
            for key, detector in configs.items():
                start = time.perf_counter()
                found = detector(shown)
                seconds[key, canvas, size].append(time.perf_counter() - start)
                hit = any(holds_face(d.box, labels.landmarks) for d in found)
                missed[key, canvas, size] += not hit
                other[key, canvas, size] += len(found) - hit
        if number % 50 == 0:
            print(f"{number}/{len(samples)}", flush=True)
    rows = []
    for canvas, size in SETTINGS:
        setting = "full size" if canvas is None else f"{canvas[0]}x{canvas[1]}, {size} px"
        for key in configs:
            cell = (key, canvas, size)
            share = 100 * missed[cell] / len(samples)
            rows.append([setting, key[0], key[1],
                         f"{missed[cell]}/{len(samples)} ({share:.1f} %)",
                         other[cell], f"{1e3 * float(np.median(seconds[cell])):.2f}"])
    print(f"\nAFLW2000-3D, {len(samples)} images (every {args.stride}th from "
          f"{args.offset}), threshold "
          f"{args.threshold}; {cpu_name()}")
    print(format_table(rows, ["faces", "detector", "input", "missed", "other boxes",
                              "ms / image (median)"]))


if __name__ == "__main__":
    main()
