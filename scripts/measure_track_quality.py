#!/usr/bin/env python3
"""The track-quality signal of dense_head_pose.video.tracking, measured on real frames.

A tracked face is fitted in the ROI of its previous landmarks; the fit's quality is the IoU
of that ROI and the ROI of its own output landmarks (``Fit.quality``). This prints
its distribution (min, median, max) when the crop is on the face (tracking the test video),
when it is shifted off the face by a fraction of its side, on background crops of the video,
and on blank frames: the numbers behind the default ``min_track_quality``.

    python scripts/measure_track_quality.py [--video ../shared/testdata/talking_head.mp4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dense_head_pose import HeadPoseEstimator
from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.pipeline.alignment import roi_from_landmarks
from dense_head_pose.video.sources import open_source

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(SHARED / "testdata" / "talking_head.mp4"))
    args = parser.parse_args()
    estimator = HeadPoseEstimator.from_model_dir()
    with open_source(args.video) as source:
        frames = [f for _, f in source]
    rows = {}
    landmarks = estimator(frames[0]).faces[0].landmarks
    tracked = []
    for frame in frames:
        fit = estimator.fit(frame, roi_from_landmarks(landmarks))
        tracked.append(fit.quality)
        landmarks = fit.landmarks
    rows["on the face (tracking the video)"] = tracked
    for fraction in (0.25, 0.5, 1.0):
        values = []
        for frame in frames[::5]:
            roi = roi_from_landmarks(estimator(frame).faces[0].landmarks)
            side = roi[2] - roi[0]
            for dx, dy in ((fraction, 0), (-fraction, 0), (0, fraction), (0, -fraction)):
                moved = roi + side * np.array([dx, dy, dx, dy])
                values.append(estimator.fit(frame, moved).quality)
        rows[f"crop shifted by {fraction} of its side"] = values
    rng = np.random.default_rng(0)
    background = []
    for frame in frames[::5]:
        for _ in range(4):
            x, y = rng.integers(0, 400), rng.integers(0, 300)
            background.append(estimator.fit(frame, np.array(
                [x, y, x + 350, y + 350], float)).quality)
    rows["background of the video"] = background
    rows["blank frames"] = [estimator.fit(
        np.full((720, 1280, 3), v, np.uint8), np.array([400, 200, 750, 550.0])).quality
        for v in (0, 90, 200)]
    print(format_table([(name, len(v), f"{min(v):.3f}", f"{np.median(v):.3f}", f"{max(v):.3f}")
                        for name, v in rows.items()],
                       ("crop", "n", "min", "median", "max")))


if __name__ == "__main__":
    main()
