#!/usr/bin/env python3
"""AFLW2000-3D accuracy of this project and of what users would pick instead, on the same
images, scored the same way as ``dense-head-pose evaluate aflw2000``.

* dense_head_pose: the default (one pass, mirror average), one plain pass, the accuracy mode,
  the int8 regressor (when built);
* MediaPipe FaceMesh (``mediapipe==0.10.21``, static-image mode) + ``cv2.solvePnP`` on the
  six points ros4hri's ``hri_face_detect`` uses (nose tip, eyes, stomion, ears; its generic
  head, millimetres): the head pose a ROS4HRI robot gets today;
* dlib's HOG detector + 68-point shape predictor + ``solvePnP`` on the classic six points
  (nose tip, chin, outer eye corners, mouth corners of the usual generic head).

PnP uses intrinsics f = image width, centred. Its rotation (model to camera optical frame) is
brought into the labels' frame (x right, y up, z towards the camera) and decomposed as the
labels are. NME is given for 68-point systems; dlib's points follow the 2D (iBUG) convention
whose jaw line differs from the labels' 3D contour at large yaw, so its NME is not a like
for like comparison. A system that finds no face in an image is counted as missing it; the
means of each system are over the images it found, and the last columns are over the images
every system found, so that a detector which skips the hard profiles does not look better.

Needs the ``peers`` and ``eval`` extras (``pip install .[peers,eval]``, best in a venv of its
own: mediapipe 0.10.21 wants numpy 1.x).

Usage: python scripts/evaluate_peers.py [--data ../shared/benchmarks/AFLW2000] [--stride 1]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator, ModelError, images
from dense_head_pose.evaluation import aflw2000 as ev
from dense_head_pose.evaluation.benchmark import format_table

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: labels' frame from the camera optical frame
OPTICAL_TO_LABEL = np.diag([1.0, -1.0, -1.0])

#: ros4hri hri_face_detect's generic head (REP-155 head frame: x forward, y left, z up; mm)
#: and the FaceMesh points it takes for them: nose tip, right eye, left eye, stomion, ears
ROS4HRI_HEAD = np.array([(21.0, 0.0, -48.0), (-20.0, -65.5, -5.0), (-20.0, 65.5, -5.0),
                         (10.0, 0.0, -75.0), (-100.0, -77.5, -6.0), (-100.0, 77.5, -6.0)])
#: as hri_face_detect maps FaceMesh to ROS4HRI (its doc/mediapipe_face_mesh_2_ros4hri.md):
#: nose 1, each eye the middle of its corners (130, 243; 359, 463), the stomion between
#: the inner lips (13), ears 34 and 264
FACEMESH_POINTS = ((1,), (130, 243), (359, 463), (13,), (34,), (264,))
#: the classic generic head (nose tip, chin, outer eye corners, mouth corners; x to image
#: right, y up, z towards the camera) and the 68-point indices of those points
CLASSIC_HEAD = np.array([(0.0, 0.0, 0.0), (0.0, -330.0, -65.0), (-225.0, 170.0, -135.0),
                         (225.0, 170.0, -135.0), (-150.0, -150.0, -125.0),
                         (150.0, -150.0, -125.0)])
DLIB_POINTS = (30, 8, 36, 45, 48, 54)


def head_in_label_axes(points: np.ndarray) -> np.ndarray:
    """REP-155 head-frame points (x forward, y left, z up) in the labels' model axes (x to
    the subject's left = image right for a frontal face, y up, z forward)."""
    return points[:, [1, 2, 0]]


def pnp_rotation(model: np.ndarray, pixels: np.ndarray, width: int, height: int
                 ) -> np.ndarray | None:
    """Rotation (model to camera optical frame) of a PnP fit, intrinsics f = width."""
    k = np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]])
    ok, rvec, _ = cv2.solvePnP(model.astype(np.float64), pixels.astype(np.float64), k, None,
                               flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return None
    ok, rvec, _ = cv2.solvePnP(model.astype(np.float64), pixels.astype(np.float64), k, None,
                               rvec=rvec, tvec=np.array([[0.0], [0.0], [1000.0]]),
                               useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    return cv2.Rodrigues(rvec)[0] if ok else None


Result = tuple[np.ndarray | None, np.ndarray | None]  # (68 x 2 landmarks, label-frame R)
#: each system's face is the one nearest the labelled face's centre (as the evaluate
#: command picks the detection holding it), so crowd pictures are not scored on a bystander
Nearest = Callable[[list[np.ndarray]], int]


def systems() -> dict[str, Callable[[np.ndarray, np.ndarray], Result | None]]:
    """name -> per-image function of (image, labelled centre): None if no face, else
    landmarks (or None) and rotation."""
    out: dict[str, Callable[[np.ndarray, np.ndarray], Result | None]] = {}

    def ours(**options: object) -> Callable[[np.ndarray, np.ndarray], Result | None]:
        estimator = HeadPoseEstimator.from_model_dir(num_threads=1, **options)

        def run(image: np.ndarray, centre: np.ndarray) -> Result | None:
            faces = estimator(image).faces
            if not faces:
                return None
            face = faces[nearest([f.landmarks[:, :2] for f in faces], centre)]
            return face.landmarks[:, :2], ev.camera_rotation(face.params)
        return run

    out["dense_head_pose (default: 1 pass + mirror)"] = ours()
    out["dense_head_pose (1 plain pass)"] = ours(mirror=False)
    out["dense_head_pose (accuracy mode)"] = ours(accurate=True)
    try:
        out["dense_head_pose (int8, default otherwise)"] = ours(precision="int8")
    except ModelError:
        print("no int8 regressor: dense-head-pose models build --precision int8 ...")
    try:
        import mediapipe as mp

        mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4)
        model = head_in_label_axes(ROS4HRI_HEAD)

        def mediapipe_pnp(image: np.ndarray, centre: np.ndarray) -> Result | None:
            h, w = image.shape[:2]
            found = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            if not found.multi_face_landmarks:
                return None
            meshes = [np.array([(p.x * w, p.y * h) for p in f.landmark])
                      for f in found.multi_face_landmarks]
            marks = found.multi_face_landmarks[nearest(meshes, centre)].landmark
            pixels = np.array([np.mean([(marks[i].x * w, marks[i].y * h) for i in group],
                                       axis=0) for group in FACEMESH_POINTS])
            rotation = pnp_rotation(model, pixels, w, h)
            return None, None if rotation is None else OPTICAL_TO_LABEL @ rotation

        out["MediaPipe FaceMesh + solvePnP (ros4hri's 6 points)"] = mediapipe_pnp
    except ImportError:
        print("mediapipe not installed: pip install .[peers]")
    try:
        import dlib
        import face_recognition_models

        detector = dlib.get_frontal_face_detector()
        predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

        def dlib_pnp(image: np.ndarray, centre: np.ndarray) -> Result | None:
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            boxes = detector(grey, 1)
            if not boxes:
                return None
            shapes = [np.array([(p.x, p.y) for p in predictor(grey, box).parts()], float)
                      for box in boxes]
            points = shapes[nearest(shapes, centre)]
            h, w = image.shape[:2]
            rotation = pnp_rotation(CLASSIC_HEAD, points[list(DLIB_POINTS)], w, h)
            return points, None if rotation is None else OPTICAL_TO_LABEL @ rotation

        out["dlib HOG + 68 points + solvePnP (classic 6 points)"] = dlib_pnp
    except ImportError:
        print("dlib / face_recognition_models not installed: pip install .[peers]")
    return out


def nearest(point_sets: list[np.ndarray], centre: np.ndarray) -> int:
    """Index of the point set whose mean is nearest ``centre``."""
    return int(np.argmin([np.linalg.norm(p.mean(axis=0) - centre) for p in point_sets]))


def score(sample: ev.Sample, result: Result) -> dict[str, float]:
    landmarks, rotation = result
    out = {"nme": ev.nme(landmarks, sample.landmarks) if landmarks is not None else math.nan}
    if rotation is not None:
        errors = np.abs((ev.label_angles(rotation) - sample.angles + 180.0) % 360.0 - 180.0)
        out.update(mae=float(errors.mean()), geodesic=ev.geodesic_deg(rotation,
                                                                        sample.rotation))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED / "benchmarks" / "AFLW2000"))
    parser.add_argument("--stride", type=int, default=1, help="every N-th image")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    samples = ev.load_aflw2000(args.data, stride=args.stride)
    runners = systems()
    scores: dict[str, list[dict[str, float] | None]] = {name: [] for name in runners}
    for sample in samples:
        image = images.read(str(sample.path))
        for name, run in runners.items():
            result = run(image, sample.landmarks.mean(axis=0))
            scores[name].append(None if result is None else score(sample, result))
    posed = [bool(np.all(np.abs(s.angles) <= ev.POSE_LIMIT_DEG)) for s in samples]
    everyone = [all(scores[n][i] is not None and "mae" in scores[n][i] for n in runners)
                for i in range(len(samples))]
    report, rows = {}, []
    for name in runners:
        found = [s for s in scores[name] if s is not None]
        pose = [s for s, p in zip(scores[name], posed) if s is not None and p and "mae" in s]
        common = [s for s, p, e in zip(scores[name], posed, everyone) if e and p]
        nmes = [s["nme"] for s in found if not math.isnan(s["nme"])]
        entry = {"missed": len(samples) - len(found),
                 "nme_pct": float(np.mean(nmes)) * 100 if nmes else None,
                 "mae_deg": float(np.mean([s["mae"] for s in pose])) if pose else None,
                 "geodesic_mean_deg": float(np.mean([s["geodesic"] for s in pose]))
                 if pose else None,
                 "common_images": len(common),
                 "common_mae_deg": float(np.mean([s["mae"] for s in common])) if common
                 else None}
        report[name] = entry

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"
        rows.append((name, f"{entry['missed']}/{len(samples)}", fmt(entry["nme_pct"]),
                     fmt(entry["mae_deg"]), fmt(entry["geodesic_mean_deg"]),
                     fmt(entry["common_mae_deg"])))
    if args.json:
        print(json.dumps(report))
        return
    print(f"AFLW2000-3D, {len(samples)} images; NME: mean over found images (not binned); MAE "
          f"over found images within +-99 deg; last column over the {sum(everyone)} images "
          "every system found")
    print(format_table(rows, ("system", "missed", "NME % (found)", "MAE deg (found)",
                              "geodesic deg", "MAE deg (common images)")))


if __name__ == "__main__":
    main()
