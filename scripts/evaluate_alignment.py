#!/usr/bin/env python3
"""Measure what the second alignment pass and the PnP pose refinement change.

No ground truth comes with the test data, so this measures consistency, which is what a
tracker downstream feels:

* box sensitivity: the detector box is jittered (+-5 % shift and scale, 20 draws per face);
  the spread of the resulting landmarks, in % of the face size (inter-ocular NME style);
* mirror consistency: landmarks of the mirrored image against the mirrored landmarks;
* video jitter: mean frame-to-frame change of landmarks, of the metric translation and of the
  rotation on talking_head.mp4 (the head moves slowly, so smaller is steadier).

Usage: python scripts/evaluate_alignment.py [--testdata ../shared/testdata]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from dense_head_pose import HeadPoseEstimator, images
from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.pipeline.detection import Detection
from dense_head_pose.video.sources import open_source

# 68-point mirror correspondence (jaw, brows, nose, eyes, mouth)
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + list(range(27, 31))
    + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def face_size(landmarks: np.ndarray) -> float:
    """Square root of the landmark bounding box area, the usual NME normaliser."""
    span = landmarks[:, :2].max(0) - landmarks[:, :2].min(0)
    return float(np.sqrt(span[0] * span[1]))


def box_sensitivity(est: HeadPoseEstimator, image: np.ndarray, rng: np.random.Generator) -> float:
    spreads = []
    for face in est(image).faces:
        w = face.box[2] - face.box[0]
        runs = []
        for _ in range(20):
            shift = rng.uniform(-0.05, 0.05, 2) * w
            scale = 1 + rng.uniform(-0.05, 0.05)
            c = (face.box[:2] + face.box[2:]) / 2 + shift
            half = (face.box[2:] - face.box[:2]) / 2 * scale
            box = np.concatenate([c - half, c + half])
            runs.append(est(image, boxes=[Detection(box, face.score)]).faces[0].landmarks[:, :2])
        runs = np.array(runs)
        spread = np.linalg.norm(runs - runs.mean(0), axis=-1).mean()
        spreads.append(spread / face_size(face.landmarks) * 100)
    return float(np.mean(spreads))


def mirror_error(est: HeadPoseEstimator, image: np.ndarray) -> float:
    a = est(image).faces
    b = est(image[:, ::-1]).faces
    errs = []
    w = image.shape[1]
    for fa in a:
        mirrored = fa.landmarks[MIRROR, :2].copy()
        mirrored[:, 0] = w - 1 - mirrored[:, 0]
        fb = min(b, key=lambda f: np.abs(f.landmarks[:, :2] - mirrored).mean())
        errs.append(np.linalg.norm(fb.landmarks[:, :2] - mirrored, axis=1).mean()
                    / face_size(fa.landmarks) * 100)
    return float(np.mean(errs))


def video_jitter(est: HeadPoseEstimator, frames: list[np.ndarray]) -> tuple[float, float, float]:
    lms, ts, rs = [], [], []
    for frame in frames:
        face = est(frame).faces[0]
        lms.append(face.landmarks[:, :2] / face_size(face.landmarks))
        ts.append(face.pose.translation)
        rs.append(face.pose.rotation)
    lm = np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in itertools.pairwise(lms)]) * 100
    tj = np.mean([np.linalg.norm(b - a) for a, b in itertools.pairwise(ts)]) * 1000
    rj = np.mean([np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))
                  for a, b in itertools.pairwise(rs)])
    return float(lm), float(tj), float(rj)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", default=str(Path(__file__).resolve().parents[1].parent
                                                   / "shared" / "testdata"))
    args = parser.parse_args()
    data = Path(args.testdata)
    stills = [images.read(str(data / n)) for n in
              ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg")]
    with open_source(str(data / "talking_head.mp4")) as src:
        frames = [f for _, f in src]
    rows = []
    for refine in (False, True):
        for method in ("affine", "pnp"):
            est = HeadPoseEstimator.from_model_dir(refine=refine, pose_method=method)
            rng = np.random.default_rng(0)
            sens = np.mean([box_sensitivity(est, im, rng) for im in stills])
            mirr = np.mean([mirror_error(est, im) for im in stills])
            lm, tj, rj = video_jitter(est, frames)
            rows.append((("2 passes" if refine else "1 pass"), method, f"{sens:.2f}",
                         f"{mirr:.2f}", f"{lm:.2f}", f"{tj:.1f}", f"{rj:.2f}"))
    print(format_table(rows, ("alignment", "pose", "box jitter spread %", "mirror error %",
                              "video landmark jitter %", "video translation jitter mm",
                              "video rotation jitter deg")))


if __name__ == "__main__":
    main()
