#!/usr/bin/env python3
"""How the smoothing defaults were chosen: on the tuning half of AFLW2000-3D only.

``record`` runs the stability set (:mod:`dense_head_pose.evaluation.stability_set`, the
``tune`` half) once with the default tracker, keeping what each track's smoother was given
(the raw fits and their times), the per-image metrics, and the references; ``replay`` then
runs any smoothing settings over those recorded fits in seconds and prints the same
median / 90th-percentile ratios. A replay does not move the tracker's crops as a live run
would (the crops came from the recording's smoother): the figures a setting earns are
measured live by ``dense-head-pose stability --aflw2000 DIR --half report`` afterwards.

Usage:
  python scripts/tune_smoothing.py record DIR CACHE.pkl [--faces 12] [--sizes 40 60 100 200]
  python scripts/tune_smoothing.py replay CACHE.pkl [--set rotation.noise=0.3 ...]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from dense_head_pose import HeadPoseEstimator
from dense_head_pose.evaluation import stability, stability_set
from dense_head_pose.evaluation.aflw2000_labels import load_aflw2000
from dense_head_pose.pipeline.pose import CameraIntrinsics
from dense_head_pose.pipeline.results import FrameResult
from dense_head_pose.video import smoothing
from dense_head_pose.video.look_ahead import LookAhead
from dense_head_pose.video.tracking import FaceTracker
from dense_head_pose.video.tracks import TrackInput, box_from_landmarks


class Recorder:
    """A tracker whose smoothers' inputs are kept: per frame, (smoother, fit, time, box
    offset, score) of every track."""

    def __init__(self, estimator: HeadPoseEstimator) -> None:
        self.tracker = FaceTracker(estimator)
        self.frames: list[list[tuple[int, Any, float, np.ndarray, float]]] = []
        self._faces = self.tracker._face

        def face(track: Any, intrinsics: Any, t: float) -> Any:
            self.frames[-1].append((id(track.smoother), track.fit, t,
                                    track.box_offset.copy(), track.score))
            return self._faces(track, intrinsics, t)
        self.tracker._face = face

    def push(self, frame: np.ndarray, t: float) -> list[FrameResult]:
        self.frames.append([])
        return [self.tracker(frame, t)]

    def finish(self) -> list[FrameResult]:
        return []


def record(args: argparse.Namespace) -> None:
    estimator = HeadPoseEstimator.from_model_dir()
    samples = load_aflw2000(args.directory)
    options = stability_set.SetOptions("tune", args.faces, tuple(args.sizes))
    entries = []
    for _, sample in stability_set.choose_faces(samples, "tune", args.faces):
        for size in options.sizes:
            rows = _one(estimator, sample, size, options)
            entries += rows
            print(f"{sample.name} {size} px: {len(rows)} clips", file=sys.stderr, flush=True)
            with open(args.cache, "wb") as out:  # usable while the rest is recorded
                pickle.dump(entries, out)


def _one(estimator: HeadPoseEstimator, sample: Any, size: int,
         options: stability_set.SetOptions) -> list[dict]:
    """The recorded clips of one face at one size."""
    from dense_head_pose import images
    from dense_head_pose.evaluation.aflw2000 import BIN_NAMES, yaw_bin
    from dense_head_pose.evaluation.distance import Distance

    canvas, moved = Distance(size, stability_set.CANVAS).apply(images.read(str(sample.path)),
                                                               sample)
    centre = moved.landmarks.mean(axis=0)
    found = [f for f in estimator(canvas).faces
             if np.linalg.norm(f.landmarks[:, :2].mean(axis=0) - centre) < 0.5 * size]
    if not found:
        return []
    face = min(found, key=lambda f: float(np.linalg.norm(f.landmarks[:, :2].mean(0) - centre)))
    out = []
    for clip in stability_set._clips(options, canvas, face):
        made: list[Recorder] = []

        def factory(made: list[Recorder] = made) -> Recorder:
            made.append(Recorder(estimator))
            return made[-1]
        metrics = stability.clip_metrics(estimator, {"tracked": factory}, clip, near=centre)
        if not metrics:
            continue
        run = made[1]  # made[0] settled on the clean frame
        own = _own_reference(estimator, clip, centre)
        own._model = None
        light = stability.Clip(clip.name, None, clip.times, clip.motions, clip.seed,
                               SimpleNamespace(centre=clip.head.centre)
                               if clip.head is not None else None, clip.axis)
        out.append({"size": size, "yaw_band": BIN_NAMES[yaw_bin(sample.bin_yaw)],
                    "image": sample.name, "clip": light, "raw": metrics[0]["raw"],
                    "tracked": metrics[0]["tracked"], "own": own, "frames": run.frames,
                    "shape": canvas.shape[:2]})
    return out


def _own_reference(estimator: HeadPoseEstimator, clip: Any, centre: np.ndarray) -> Any:
    """The tracker's settled estimate of the clean frame (as clip_metrics takes it)."""
    tracker = FaceTracker(estimator)
    unmoved = clip.unmoved()
    for i in range(30):
        result = tracker(unmoved, i / 30.0)
    return min(result.faces, key=lambda f: float(np.linalg.norm(
        f.landmarks[:, :2].mean(0) - centre)))


def replay_entry(estimator: HeadPoseEstimator, entry: dict, options: Any,
                 look_ahead: int = 0) -> dict:
    """The metrics of ``options``' smoothing over one recorded clip (``None``: the tracker's
    fits unsmoothed; ``look_ahead``: smoothed with that many later frames)."""
    smoothers: dict[int, smoothing.FitSmoother] = {}
    h, w = entry["shape"]
    intrinsics = CameraIntrinsics.default(w, h)
    project = FaceTracker(estimator)._project
    results = []
    if look_ahead:
        stage = LookAhead(estimator, options, look_ahead)
        for frame in entry["frames"]:
            inputs = {key: TrackInput(fit, offset, score)
                      for key, fit, t, offset, score in frame}
            faces = []
            for key, given in inputs.items():
                face = estimator.face_from_fit(given.fit, box_from_landmarks(
                    given.fit.landmarks, given.box_offset), given.score, intrinsics)
                if face is not None:
                    face.id = key
                    faces.append(face)
            t = frame[0][2] if frame else (results and 0.0) or 0.0
            results += [r for _, r in stage.push(None, t, FrameResult(faces, w, h, {}),
                                                 inputs, intrinsics)]
        results += [r for _, r in stage.finish()]
    for frame in entry["frames"] if not look_ahead else []:
        faces = []
        for key, fit, t, offset, score in frame:
            out = fit
            if options is not None:
                smoother = smoothers.setdefault(key, smoothing.FitSmoother(options))
                out = smoother(fit, t, project)
            face = estimator.face_from_fit(out, box_from_landmarks(out.landmarks, offset),
                                           score, intrinsics)
            if face is not None:
                faces.append(face)
        results.append(FrameResult(faces, w, h, {}))
    own = entry["own"]
    own._model = estimator.model
    metric = stability.still_metrics if entry["clip"].name == "still" else \
        stability.moving_metrics
    return metric(results, own, entry["clip"])


def _parse_set(items: list[str], base: smoothing.SmoothingOptions
               ) -> smoothing.SmoothingOptions:
    options = base
    for item in items:
        name, value = item.split("=")
        if "." in name:
            quantity, field = name.split(".")
            params = replace(getattr(options, quantity), **{field: float(value)})
            options = replace(options, **{quantity: params})
        else:
            options = replace(options, **{name: float(value)})
    return options


def replay(args: argparse.Namespace) -> None:
    estimator = HeadPoseEstimator.from_model_dir()
    with open(args.cache, "rb") as source:
        entries = pickle.load(source)
    options = None if args.unsmoothed else _parse_set(args.set or [],
                                                      smoothing.SmoothingOptions())
    rows = []
    for entry in entries:
        rows.append({"size": entry["size"], "yaw_band": entry["yaw_band"],
                     "clip": entry["clip"].name, "raw": entry["raw"],
                     "tracked": replay_entry(estimator, entry, options, args.look_ahead)})
    report = {"half": "tune", "faces": len({e["image"] for e in entries}),
              "sizes": sorted({e["size"] for e in entries}), "canvas": [1280, 720],
              "followers": ["tracked"], "rows": rows, "missed": []}
    print(stability_set.set_tables(report, stability_set.summarise_set(report)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("record")
    p.add_argument("directory")
    p.add_argument("cache")
    p.add_argument("--faces", type=int, default=12)
    p.add_argument("--sizes", type=int, nargs="+", default=list(stability_set.SIZES))
    p.set_defaults(run=record)
    p = sub.add_parser("replay")
    p.add_argument("cache")
    p.add_argument("--set", nargs="*", metavar="QUANTITY.FIELD=VALUE")
    p.add_argument("--look-ahead", type=int, default=0, metavar="FRAMES",
                   help="smooth with this many later frames (the offline smoother)")
    p.add_argument("--unsmoothed", action="store_true",
                   help="the tracker's own fits, without smoothing")
    p.set_defaults(run=replay)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
