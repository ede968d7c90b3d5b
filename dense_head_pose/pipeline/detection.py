"""Face detection with the RFB-320 "Ultra-Light" detector.

The model sees a 320x240 RGB image (the frame letterboxed into it), min-max normalised to
[-1, 1], and scores 4420 fixed priors (anchor boxes). Priors are generated once; per frame
only the priors whose face score passes the threshold are decoded, then non-maximum
suppression keeps the best of overlapping boxes. Boxes come back in image pixels.

When a frame yields no face, the detector can look once more at the mirrored input
(``retry_mirrored``): the network is not left-right symmetric, and a profile it scores below
the threshold one way round often passes the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..runtime import TFLiteModel

INPUT_W, INPUT_H = 320, 240
_FEATURE_MAPS = ((40, 30), (20, 15), (10, 8), (5, 4))  # (w, h) per level
_MIN_BOXES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
_CENTER_VARIANCE = 0.1
_SIZE_VARIANCE = 0.2
#: Images with a side below this (pixels) hold no face the detector could find.
MIN_SIDE = 8
#: What :meth:`FaceDetector.__call__` looks at (see there).
VIEWS = ("auto", "plain", "mirrored")


def make_priors() -> np.ndarray:
    """Priors as ``(4420, 4)`` float32 ``(cx, cy, w, h)`` relative to the input size.

    Order: level, then row-major over that level's map, then over its box sizes, which is the
    order of the model's output rows.
    """
    levels = []
    for (fw, fh), sizes in zip(_FEATURE_MAPS, _MIN_BOXES):
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)  # row-major over the map
        wh = np.array([[s / INPUT_W, s / INPUT_H] for s in sizes])
        level = np.concatenate(
            [np.repeat(centres, len(sizes), axis=0), np.tile(wh, (len(centres), 1))], axis=1)
        levels.append(level)
    return np.clip(np.concatenate(levels), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Detection:
    """One detected face: ``box`` = (x1, y1, x2, y2) in image pixels, ``score`` in [0, 1]."""

    box: np.ndarray
    score: float


class FaceDetector:
    """RFB-320 face detector: ``detector(bgr_image) -> list[Detection]`` sorted by area."""

    def __init__(self, model_path: Path, num_threads: int = 1, score_threshold: float = 0.6,
                 nms_iou: float = 0.3, retry_mirrored: bool = True) -> None:
        self._model = TFLiteModel(model_path, (1, INPUT_H, INPUT_W, 3), num_threads)
        self._priors = make_priors()
        self._input = np.empty((1, INPUT_H, INPUT_W, 3), np.float32)
        self._canvas = np.zeros((INPUT_H, INPUT_W, 3), np.uint8)
        self._placement = (1.0, 1.0, 0, 0)  # x and y scale, x and y offset of the last image
        self.letterbox = True
        """Keep the aspect ratio (see :meth:`preprocess`); False stretches to 4:3 as the seed
        did (kept to measure the difference)."""
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.retry_mirrored = retry_mirrored
        """When no face passes the threshold, run the model once more on the mirrored input.
        Measured on AFLW2000-3D (``dense-head-pose evaluate``): faces missed 30 -> 17 of
        2000 (20 -> 12 beyond 60 degrees of yaw) for 2 more other boxes (99 -> 101); no extra
        box on the test video and stills. It costs one more inference only on frames where
        nothing was found; a frame with a face costs the same."""

    def preprocess(self, image: np.ndarray) -> None:
        """Scale the image into the 320x240 input, BGR to RGB, min-max normalise into the
        input buffer. An image narrower than 4:3 (square, portrait) keeps its aspect ratio,
        centred on black; a wider one is stretched to 4:3, as the detector was trained.

        Measured (``scripts/evaluate_detection.py``): a square 450x450 photo stretched to 4:3
        has every face squashed by a third, and the detector missed 42 of AFLW2000-3D's 2000
        faces at threshold 0.6; letterboxed, 27 (28 against 17 beyond 60 degrees of yaw),
        with fewer other boxes (99 against 112). A 16:9 frame letterboxed, on the other
        hand, made a TV logo of the test video a face (scores 0.4-0.67 in 20 of its 55
        frames); stretched, it stays below 0.5, and no face of the test images is lost."""
        height, width = image.shape[:2]
        new_w, new_h = INPUT_W, INPUT_H
        if self.letterbox and width * INPUT_H < height * INPUT_W:  # narrower than 4:3
            new_w = min(INPUT_W, max(1, round(width * INPUT_H / height)))
        x0, y0 = (INPUT_W - new_w) // 2, (INPUT_H - new_h) // 2
        self._canvas[:] = 0
        # Bilinear, as the seed does, at every size: INTER_AREA on a 3913x1901 still cost
        # 16 ms against 0.1 ms, made detection 9x slower than on 1280x720, and found the same
        # faces with the same scores on the test images and their 4x-reduced copies
        # (scripts/benchmark_performance.py, test_detection.py)
        # (resized, then placed: OpenCV 4.5 refuses a strided view as the destination)
        self._canvas[y0:y0 + new_h, x0:x0 + new_w] = cv2.resize(
            image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        # exact per axis, so the boxes map back to the image's own pixels
        self._placement = (new_w / width, new_h / height, x0, y0)
        rgb = cv2.cvtColor(self._canvas, cv2.COLOR_BGR2RGB)
        # min and max over all channels together, as the detector was trained
        cv2.normalize(rgb, self._input[0], -1.0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)

    def infer(self) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on the prepared input; (regressions (4420, 4), face scores (4420,))."""
        regressions, scores = self._model.run(self._input)
        return regressions[0], scores[0, :, 1]

    def mirror_input(self) -> None:
        """Mirror the prepared input left to right (the min-max normalisation does not
        change), so :meth:`infer` sees the mirrored frame without a second resize."""
        self._input[0] = self._input[0, :, ::-1]

    def postprocess(self, regressions: np.ndarray, scores: np.ndarray, width: int,
                    height: int, mirrored: bool = False) -> list[Detection]:
        """Decode the priors above threshold, suppress overlaps, scale to pixels;
        ``mirrored``: the scores are of the mirrored input, so the boxes are mirrored back."""
        keep = np.flatnonzero(scores > self.score_threshold)
        if keep.size == 0:
            return []
        reg, prior = regressions[keep], self._priors[keep]
        centre = reg[:, :2] * _CENTER_VARIANCE * prior[:, 2:] + prior[:, :2]
        half = np.exp(reg[:, 2:] * _SIZE_VARIANCE) * prior[:, 2:] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        if mirrored:  # x -> 1 - x, and the box's left and right edges swap
            boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
        # input-relative -> image pixels (undo the letterbox), clipped to the image
        sx, sy, x0, y0 = self._placement
        boxes *= np.array([INPUT_W, INPUT_H, INPUT_W, INPUT_H], np.float32)
        boxes -= np.array([x0, y0, x0, y0], np.float32)
        boxes /= np.array([sx, sy, sx, sy], np.float32)
        boxes = np.clip(boxes, 0.0, np.array([width, height, width, height], np.float32))
        kept_scores = scores[keep]
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        chosen = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), kept_scores.tolist(),
                                             self.score_threshold, self.nms_iou)).reshape(-1)
        detections = [Detection(boxes[i].astype(np.float64), float(kept_scores[i]))
                      for i in chosen
                      if boxes[i, 2] - boxes[i, 0] >= 1.0 and boxes[i, 3] - boxes[i, 1] >= 1.0]
        detections.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        return detections

    def __call__(self, image: np.ndarray, view: str = "auto") -> list[Detection]:
        """Detect faces in a BGR uint8 image, largest first.

        ``view``: ``auto``, the image, then its mirror if nothing was found and
        :attr:`retry_mirrored`; ``plain``, the image only; ``mirrored``, its mirror only (a
        tracker scanning an empty scene alternates the two, so the retry costs it nothing)."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if min(image.shape[:2]) < MIN_SIDE:  # no face fits (and OpenCV 4.5 cannot resize
            return []                        # a 1x1 image)
        width, height = image.shape[1], image.shape[0]
        self.preprocess(image)
        if view != "mirrored":
            found = self.postprocess(*self.infer(), width, height)
            if found or view == "plain" or not self.retry_mirrored:
                return found
        self.mirror_input()
        return self.postprocess(*self.infer(), width, height, mirrored=True)
