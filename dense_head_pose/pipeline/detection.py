"""Face detection with the RFB "Ultra-Light" detector, at the input size the frame needs.

The model is fully convolutional: it sees a WxH RGB image (320x240 as trained, or larger to
find smaller faces; the frame letterboxed into it), min-max normalised to [-1, 1], and scores
fixed priors (anchor boxes) on four feature maps of strides 8, 16, 32 and 64: 4420 at 320x240,
17,640 at 640x480. Priors follow the input size and are generated once per size; per frame
only the priors whose face score passes the threshold are decoded, then non-maximum
suppression keeps the best of overlapping boxes. Boxes come back in image pixels.

When a frame yields no face, the detector can look once more at the mirrored input
(``retry_mirrored``): the network is not left-right symmetric, and a profile it scores below
the threshold one way round often passes the other way round.

**Two looks** (``input_size="auto"``): one input size cannot serve faces from 25 to 500
pixels, as the priors span 10 to 256 input pixels. The *near look* sees the whole frame at
320x240, as trained, and finds the faces of people close by; the *far look*
(:mod:`.far_look`) looks closely, at the frame's own resolution and enlarged, at the few
places where the near look's finest priors score highest, and keeps the faces too small for
the near look (:data:`~.far_look.NEAR_MIN_FACE` input pixels there). The two are merged by
non-maximum suppression. The far look runs only on frames large enough for it to see more
(:data:`~.far_look.FAR_MIN_GAIN`); its cost does not grow with the frame
(:meth:`FaceDetector.far_cost`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..runtime import TFLiteModel
from .detections import (
    TRAINED_INPUT,
    Detection,
    largest_first,
    near_scale,
    overlap,
    part_of,
    suppressed,
)
from .far_look import (
    CONFIRM_CONTEXT,
    FAR_MIN_GAIN,
    FAR_MIN_SCORE,
    NEAR_MIN_FACE,
    Proposal,
    at_edge,
    cost_in_near_looks,
    far_face,
    far_input,
    far_scale,
    merge_proposals,
    neighbourhood,
    proposal_count,
    proposals,
)

#: The input the detector was trained at (width, height).
_STRIDES = (8, 16, 32, 64)
_MIN_BOXES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
_CENTER_VARIANCE = 0.1
_SIZE_VARIANCE = 0.2
#: Images with a side below this (pixels) hold no face the detector could find.
MIN_SIDE = 8
#: A frame wider than the detector's input is stretched to the input's shape, as the
#: detector was trained, up to this distortion of its aspect ratio (a 2.67:1 frame into
#: 4:3); a wider one keeps its shape, letterboxed: stretched 400-fold, a 9000x17 strip
#: "held" faces taller than itself.
MAX_STRETCH = 2.0
#: What :meth:`FaceDetector.__call__` looks at (see there).
VIEWS = ("auto", "plain", "mirrored")
#: Input sides the detector accepts: multiples of 8 in this range (pixels).
INPUT_SIDE_RANGE = (64, 1920)
#: The pack's detectors: the network trained at 320x240 and the same network trained at
#: 640x480 (both converted by ``models build``, resizable to any input).
DETECTOR_FILES = {"rfb320": "face_detector_rfb320.tflite",
                  "rfb640": "face_detector_rfb640.tflite"}
#: Interpreters kept, one per input size (the far look follows the frame size: one per
#: camera resolution).
_MAX_INPUT_SIZES = 4
def check_input_size(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (width, height) if the detector can take it; ValueError naming the rule."""
    lo, hi = INPUT_SIDE_RANGE
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and lo <= v <= hi
                                 and v % 8 == 0 for v in size):
        raise ValueError(f"detector input must be WxH with sides multiples of 8 in "
                         f"[{lo}, {hi}], got {size!r}")
    return int(size[0]), int(size[1])


def parse_input_size(text: str) -> tuple[int, int] | str:
    """``"WxH"`` -> ``(W, H)`` (checked), ``"auto"`` -> ``"auto"``; ValueError otherwise."""
    if text == "auto":
        return text
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"detector input must be auto or WxH (e.g. 640x480), got "
                         f"{text!r}") from None
    return check_input_size((width, height))


def make_priors(width: int = TRAINED_INPUT[0], height: int = TRAINED_INPUT[1]) -> np.ndarray:
    """Priors for a ``width`` x ``height`` input as ``(N, 4)`` float32 ``(cx, cy, w, h)``
    relative to the input size (N = 4420 at 320x240).

    Order: level, then row-major over that level's map, then over its box sizes, which is the
    order of the model's output rows. A level's map is the input divided by its stride,
    rounded up, as the network's padded stride-2 convolutions round.
    """
    levels = []
    for stride, sizes in zip(_STRIDES, _MIN_BOXES):
        fw, fh = -(-width // stride), -(-height // stride)
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)  # row-major over the map
        wh = np.array([[s / width, s / height] for s in sizes])
        level = np.concatenate(
            [np.repeat(centres, len(sizes), axis=0), np.tile(wh, (len(centres), 1))], axis=1)
        levels.append(level)
    return np.clip(np.concatenate(levels), 0.0, 1.0).astype(np.float32)


class _Input:
    """The interpreter, priors and buffers of one input size."""

    def __init__(self, model_path: Path, size: tuple[int, int], num_threads: int) -> None:
        width, height = size
        self.size = size
        self.model = TFLiteModel(model_path, (1, height, width, 3), num_threads)
        self.priors = make_priors(width, height)
        self.input = np.zeros((1, height, width, 3), np.float32)
        self.canvas = np.zeros((height, width, 3), np.uint8)
        self.placement = (1.0, 1.0, 0, 0)  # x and y scale, x and y offset of the last image


class FaceDetector:
    """RFB face detector: ``detector(bgr_image) -> list[Detection]`` sorted by area.

    ``input_size``: the network's input, ``(width, height)``, or ``"auto"``: the near and
    the far look (see module).
    """

    def __init__(self, model_path: Path, num_threads: int = 1, score_threshold: float = 0.6,
                 nms_iou: float = 0.3, retry_mirrored: bool = True,
                 input_size: tuple[int, int] | str = TRAINED_INPUT) -> None:
        self._model_path = Path(model_path)
        self._num_threads = num_threads
        self._inputs: dict[tuple[int, int], _Input] = {}
        self.input_size = input_size
        self._current = self._input_for(self._near_size())
        self.letterbox = True
        """Keep the aspect ratio of frames narrower than the input (see :meth:`preprocess`);
        False stretches them (kept to measure the difference)."""
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.retry_mirrored = retry_mirrored
        """When no face passes the threshold, run the model once more on the mirrored input:
        the network is not left-right symmetric, and a profile it scores below the threshold
        one way round often passes the other way round. It costs one more inference only on
        frames where nothing was found."""

    @property
    def input_size(self) -> tuple[int, int] | str:
        """``(width, height)`` of the network's input, or ``"auto"``."""
        return self._input_size

    @input_size.setter
    def input_size(self, value: tuple[int, int] | str) -> None:
        self._input_size = value if value == "auto" else check_input_size(value)  # type: ignore[arg-type]

    def _near_size(self) -> tuple[int, int]:
        return TRAINED_INPUT if self._input_size == "auto" else self._input_size  # type: ignore[return-value]

    def far_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The frame's size as the far look sees it (scaled down to
        :data:`~.far_look.FAR_LONG_SIDE` if larger); None when the far look is off (a
        fixed input size) or would not see more than the near look (``FAR_MIN_GAIN``)."""
        if self._input_size != "auto":
            return None
        scale = far_scale(width, height)
        if scale < FAR_MIN_GAIN * near_scale(width, height):
            return None
        return round(width * scale), round(height * scale)

    def far_cost(self, width: int, height: int) -> float:
        """What the far look of a ``width`` x ``height`` frame costs, in near looks; 0 when
        it does not run."""
        if self.far_size(width, height) is None:
            return 0.0
        return cost_in_near_looks(self._near_size(),
                                  far_scale(width, height) / near_scale(width, height))

    def near_sees(self, box: np.ndarray, width: int, height: int) -> bool:
        """Whether the near look alone finds a face of ``box`` in a ``width`` x ``height``
        frame as reliably as with the far look (always, without a far look)."""
        if self.far_size(width, height) is None:
            return True
        return (box[2] - box[0]) * near_scale(width, height) >= NEAR_MIN_FACE

    def _input_for(self, size: tuple[int, int]) -> _Input:
        entry = self._inputs.pop(size, None)
        if entry is None:
            entry = _Input(self._model_path, size, self._num_threads)
            # the output shapes are known after a first run (the model's are dynamic)
            rows = [output.shape[1] for output in entry.model.run(entry.input)]
            if rows != [len(entry.priors)] * 2:
                raise ModelError(f"{self._model_path}: at input {size[0]}x{size[1]} it gives "
                                 f"{rows} boxes, not the {len(entry.priors)} priors of the "
                                 "RFB detector")
            while len(self._inputs) >= _MAX_INPUT_SIZES:
                self._inputs.pop(next(iter(self._inputs)))
        self._inputs[size] = entry  # most recently used last
        return entry

    def preprocess(self, image: np.ndarray, size: tuple[int, int] | None = None) -> None:
        """Scale the image into the input (``size``; default the near look's), BGR to RGB,
        min-max normalise into the input buffer. An image narrower than the input keeps its
        aspect ratio, centred on black; a wider one is stretched to the input's aspect, as
        the detector was trained (a 16:9 frame letterboxed into 4:3 made a TV logo of the
        test video a face, which stretched stays below threshold), up to
        :data:`MAX_STRETCH`; beyond, it is letterboxed too. A frame smaller than the input is
        scaled up to it."""
        height, width = image.shape[:2]
        entry = self._current = self._input_for(size or self._near_size())
        in_w, in_h = entry.size
        new_w, new_h = in_w, in_h
        if self.letterbox and width * in_h < height * in_w:  # narrower than the input
            new_w = min(in_w, max(1, round(width * in_h / height)))
        elif width * in_h > MAX_STRETCH * height * in_w:  # far wider: keeps its shape
            new_h = min(in_h, max(1, round(height * in_w / width)))
        x0, y0 = (in_w - new_w) // 2, (in_h - new_h) // 2
        entry.canvas[:] = 0
        # Bilinear at every size: INTER_AREA on a large still costs a hundred times more and
        # finds the same faces with the same scores (test_detection.py)
        # (resized, then placed: OpenCV 4.5 refuses a strided view as the destination)
        entry.canvas[y0:y0 + new_h, x0:x0 + new_w] = cv2.resize(
            image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        # exact per axis, so the boxes map back to the image's own pixels
        entry.placement = (new_w / width, new_h / height, x0, y0)
        rgb = cv2.cvtColor(entry.canvas, cv2.COLOR_BGR2RGB)
        # min and max over all channels together, as the detector was trained
        cv2.normalize(rgb, entry.input[0], -1.0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)

    def infer(self) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on the prepared input; (regressions (N, 4), face scores (N,))."""
        regressions, scores = self._current.model.run(self._current.input)
        return regressions[0], scores[0, :, 1]

    def mirror_input(self) -> None:
        """Mirror the prepared input left to right (the min-max normalisation does not
        change), so :meth:`infer` sees the mirrored frame without a second resize."""
        self._current.input[0] = self._current.input[0, :, ::-1]

    def postprocess(self, regressions: np.ndarray, scores: np.ndarray, width: int,
                    height: int, mirrored: bool = False) -> list[Detection]:
        """Decode the priors above threshold, suppress overlaps, scale to pixels;
        ``mirrored``: the scores are of the mirrored input, so the boxes are mirrored back."""
        keep = np.flatnonzero(scores > self.score_threshold)
        if keep.size == 0:
            return []
        entry = self._current
        reg, prior = regressions[keep], entry.priors[keep]
        centre = reg[:, :2] * _CENTER_VARIANCE * prior[:, 2:] + prior[:, :2]
        half = np.exp(reg[:, 2:] * _SIZE_VARIANCE) * prior[:, 2:] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        if mirrored:  # x -> 1 - x, and the box's left and right edges swap
            boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
        # input-relative -> image pixels (undo the letterbox), clipped to the image
        sx, sy, x0, y0 = entry.placement
        in_w, in_h = entry.size
        boxes *= np.array([in_w, in_h, in_w, in_h], np.float32)
        boxes -= np.array([x0, y0, x0, y0], np.float32)
        boxes /= np.array([sx, sy, sx, sy], np.float32)
        boxes = np.clip(boxes, 0.0, np.array([width, height, width, height], np.float32))
        kept_scores = scores[keep]
        chosen = suppressed(boxes, kept_scores.tolist(), self.score_threshold, self.nms_iou)
        return largest_first([
            Detection(boxes[i].astype(np.float64), float(kept_scores[i])) for i in chosen
            if boxes[i, 2] - boxes[i, 0] >= 1.0 and boxes[i, 3] - boxes[i, 1] >= 1.0])

    def __call__(self, image: np.ndarray, view: str = "auto", far: bool = True
                 ) -> list[Detection]:
        """Detect faces in a BGR uint8 image, largest first.

        ``view``: ``auto``, the image, then its mirror if nothing was found and
        :attr:`retry_mirrored`; ``plain``, the image only; ``mirrored``, its mirror only (a
        tracker scanning an empty scene alternates the two, so the retry costs it nothing).
        ``far``: also the far look, where :meth:`far_size` gives one; with ``auto`` its
        mirror is looked at only when neither look found anything."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if min(image.shape[:2]) < MIN_SIDE:  # no face fits (and OpenCV 4.5 cannot resize
            return []                        # a 1x1 image)
        width, height = image.shape[1], image.shape[0]
        looks: list[tuple[np.ndarray, np.ndarray, bool]] = []
        found = self._near(image, view, looks)
        if not far or self.far_size(width, height) is None:
            return found
        placement = self._current.placement
        near_size = self._current.size

        def to_image(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sx, sy, x0, y0 = placement
            return (u - x0) / sx, (v - y0) / sy

        scale, shrink = far_scale(width, height), near_scale(width, height)
        count = proposal_count(scale / shrink)
        # the near look's sure faces are looked at no further; its small ones may be off
        sure = [d for d in found if (d.box[2] - d.box[0]) * shrink >= NEAR_MIN_FACE]
        places = merge_proposals([p for scores, boxes, mirrored in looks
                                  for p in proposals(scores, boxes, mirrored, near_size,
                                                     to_image, scale, count + len(sure))],
                                 count, [d.box for d in sure])
        small: list[Detection] = []
        for rank, place in enumerate(places):
            small += self._far_faces(image, place, sure, view, retry=rank == 0 and not (
                found or small))
        return self._merged(found + small) if small else found

    def _far_faces(self, image: np.ndarray, place: Proposal, near: list[Detection],
                   view: str, retry: bool) -> list[Detection]:
        """The faces of one proposal's neighbourhood that the near look is not competent
        for and did not find, that are not part of a near face (an ear, an earring), and
        that a second look confirms (:meth:`_confirmed`). ``retry``: looked at mirrored
        too when nothing is found."""
        height, width = image.shape[:2]
        crop, x0, y0 = neighbourhood(image, place)
        self.preprocess(crop, far_input())
        views = [view == "mirrored"]
        if retry and view == "auto" and self.retry_mirrored:
            views.append(True)
        least = max(self.score_threshold, FAR_MIN_SCORE)
        offset = np.array([x0, y0, x0, y0], np.float64)
        for i, mirrored in enumerate(views):
            if mirrored and (i or view == "mirrored"):
                self.mirror_input()
            found = [Detection(np.clip(d.box + offset, 0.0, [width, height, width, height]),
                               d.score)
                     for d in self.postprocess(*self.infer(), *crop.shape[1::-1], mirrored)
                     if d.score > least]
            found = [d for d in found if far_face(d.box, near_scale(width, height))
                     and not any(part_of(d.box, n.box) or overlap(d.box, n.box) > 0.3
                                 for n in near)]
            if found:
                return [d for d in found if self._confirmed(image, d)]
        return []

    def _confirmed(self, image: np.ndarray, face: Detection) -> bool:
        """Whether a far face is found again in a wider neighbourhood (three times its
        size): in its mirror image, or, away from the frame's edges, as it is. Patterns that
        pass for a face in one framing (a flag's stars at a frame's corner, at 0.99) do not
        in the other; the mirror alone would lose profiles, which the detector finds one
        way round only (docs/accuracy.md)."""
        box = face.box
        side = CONFIRM_CONTEXT * max(box[2] - box[0], box[3] - box[1])
        crop, x0, y0 = neighbourhood(image, Proposal((box[0] + box[2]) / 2,
                                                     (box[1] + box[3]) / 2, side, 0.0))
        self.preprocess(crop, far_input())
        offset = np.array([x0, y0, x0, y0], np.float64)
        height, width = image.shape[:2]
        views = [True] if at_edge(box, width, height) else [True, False]
        for mirrored in views:
            self.mirror_input()  # mirrored, then back as it is
            if any(overlap(box, d.box + offset) > 0.3 for d in self.postprocess(
                    *self.infer(), *crop.shape[1::-1], mirrored=mirrored)):
                return True
        return False

    def _near(self, image: np.ndarray, view: str,
              looks: list[tuple[np.ndarray, np.ndarray, bool]]) -> list[Detection]:
        """The near look's faces; ``looks`` receives the face scores and the decoded boxes
        of each look taken (plain, mirrored), which propose the far look's places."""
        width, height = image.shape[1], image.shape[0]
        self.preprocess(image)
        if view != "mirrored":
            regressions, scores = self.infer()
            looks.append((scores.copy(), self._decoded(regressions), False))
            found = self.postprocess(regressions, scores, width, height)
            if found or view == "plain" or not self.retry_mirrored:
                return found
        self.mirror_input()
        regressions, scores = self.infer()
        looks.append((scores.copy(), self._decoded(regressions), True))
        return self.postprocess(regressions, scores, width, height, mirrored=True)

    def _decoded(self, regressions: np.ndarray) -> np.ndarray:
        """Every prior's box, (cx, cy, w, h) relative to the current input."""
        prior = self._current.priors
        centre = regressions[:, :2] * _CENTER_VARIANCE * prior[:, 2:] + prior[:, :2]
        return np.concatenate([centre, np.exp(regressions[:, 2:] * _SIZE_VARIANCE)
                               * prior[:, 2:]], axis=1)

    def _merged(self, detections: list[Detection]) -> list[Detection]:
        """The looks' detections, overlaps suppressed, largest first."""
        chosen = suppressed(np.array([d.box for d in detections]),
                             [d.score for d in detections], 0.0, self.nms_iou)
        return largest_first([detections[i] for i in chosen])
