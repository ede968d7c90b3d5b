#!/usr/bin/env python3
"""Fit the detector box -> ROI rule of ``alignment.roi_from_box`` without labels.

The ROI a face's fit converges to (three passes, each cropping the ROI of the previous
pass's landmarks) is the crop the regressor "prefers" for that face. On the test stills
and the test video (never the benchmark), flipped, rotated by +-12 and +-25 degrees and
scaled to 0.75 and 0.5, this prints the medians over all faces of that ROI against the
detector's box: side over the box's mean side, and the centre's shift in units of it. The
rule in ``alignment.py`` (``ROI_SCALE``, ``ROI_SHIFT``) is these medians.

Usage: python scripts/fit_roi_rule.py [--testdata ../shared/testdata]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dense_head_pose import HeadPoseEstimator, images
from dense_head_pose.pipeline.alignment import roi_from_box, roi_from_landmarks
from dense_head_pose.video.sources import open_source

SHARED = Path(__file__).resolve().parents[2] / "shared"


def variants(image: np.ndarray) -> Iterator[np.ndarray]:
    yield image
    yield image[:, ::-1].copy()
    h, w = image.shape[:2]
    for angle in (-25, -12, 12, 25):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        yield cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    for scale in (0.5, 0.75):
        yield cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", default=str(SHARED / "testdata"))
    args = parser.parse_args()
    data = Path(args.testdata)
    # plain fits: the rule is about where the regressor wants its crop
    estimator = HeadPoseEstimator.from_model_dir(mirror=False)
    base = [images.read(str(data / n)) for n in
            ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg")]
    with open_source(str(data / "talking_head.mp4")) as source:
        base += [frame for i, frame in source if i % 3 == 0]
    rows = []
    for image in base:
        for variant in variants(image):
            for det in estimator.detect(variant):
                fit = estimator.fit(variant, roi_from_box(det.box), 3)
                if fit is None:
                    continue
                roi = roi_from_landmarks(fit.landmarks)
                box = det.box
                size = ((box[2] - box[0]) + (box[3] - box[1])) / 2
                centre = (box[:2] + box[2:]) / 2
                roi_centre = (roi[:2] + roi[2:]) / 2
                rows.append([(roi[2] - roi[0]) / size, *((roi_centre - centre) / size)])
    rows = np.array(rows)
    median = np.median(rows, axis=0)
    q1, q3 = np.percentile(rows, [25, 75], axis=0)
    print(f"{len(rows)} faces: ROI side / box size {median[0]:.3f} (quartiles {q1[0]:.3f}-"
          f"{q3[0]:.3f}); centre shift x {median[1]:+.3f}, y {median[2]:+.3f} "
          f"(quartiles {q1[2]:+.3f}..{q3[2]:+.3f}) box sizes")


if __name__ == "__main__":
    main()
