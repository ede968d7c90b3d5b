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
320x240, as trained, and finds the faces of people close by; the *far look* sees the frame at
its own resolution (at most :data:`FAR_LONG_SIDE` pixels wide or high) and keeps the faces
too small for the near look (:data:`NEAR_MIN_FACE` input pixels there). The two are merged by
non-maximum suppression. The far look runs only on frames large enough for it to see more
(:data:`FAR_MIN_GAIN`); it costs about as many near looks as its input holds 320x240 areas
(:meth:`FaceDetector.far_cost`), so a tracker runs it on every few detections only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..runtime import TFLiteModel

#: The input the detector was trained at (width, height).
TRAINED_INPUT = (320, 240)
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
#: The far look's longest input side: larger frames are scaled down to it.
FAR_LONG_SIDE = 1280
#: The far look keeps the faces narrower than this many pixels of the near look's input:
#: above it the near look finds them as reliably (docs/accuracy.md, "People across the
#: room").
NEAR_MIN_FACE = 48.0
#: The far look runs when it sees the frame at least this many times larger than the near
#: look does.
FAR_MIN_GAIN = 1.5
#: The least score of a far-look face (or the detector's threshold, if higher): the far
#: look sees many more priors than the near look, and logos and highlights that the near
#: look scores below its threshold pass it there, while most small faces score far above
#: it (docs/accuracy.md, "People across the room").
FAR_MIN_SCORE = 0.9


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


@dataclass(frozen=True)
class Detection:
    """One detected face: ``box`` = (x1, y1, x2, y2) in image pixels, ``score`` in [0, 1]."""

    box: np.ndarray
    score: float


def _near_scale(width: int, height: int) -> float:
    """How much the near look (320x240, letterboxed or stretched) scales a frame."""
    return max(TRAINED_INPUT[0] / width, TRAINED_INPUT[1] / height)


def _suppressed(boxes: np.ndarray, scores: list[float], min_score: float, iou: float
                ) -> np.ndarray:
    """Indices of the boxes (x0, y0, x1, y1) that non-maximum suppression keeps."""
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores, min_score, iou)).reshape(-1)


def _largest_first(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))


def _part_of(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether box ``inner`` is narrower than face box ``outer`` (by a fifth at least) and
    centred on its head (the box grown by 30 % on every side: ears and hair)."""
    w, h = outer[2] - outer[0], outer[3] - outer[1]
    cx, cy = (inner[0] + inner[2]) / 2.0, (inner[1] + inner[3]) / 2.0
    return bool(outer[0] - 0.3 * w <= cx <= outer[2] + 0.3 * w
                and outer[1] - 0.3 * h <= cy <= outer[3] + 0.3 * h
                and inner[2] - inner[0] < 0.8 * w)


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
        """The far look's input for a ``width`` x ``height`` frame: the frame's own size,
        scaled down to :data:`FAR_LONG_SIDE` if larger, sides rounded up to multiples of 8;
        None when the far look is off (a fixed input size) or would not see more than the
        near look (:data:`FAR_MIN_GAIN`)."""
        if self._input_size != "auto":
            return None
        scale = min(1.0, FAR_LONG_SIDE / max(width, height))
        if scale < FAR_MIN_GAIN * _near_scale(width, height):
            return None
        lo, hi = INPUT_SIDE_RANGE
        return (min(hi, max(lo, -(-round(width * scale) // 8) * 8)),
                min(hi, max(lo, -(-round(height * scale) // 8) * 8)))

    def far_cost(self, width: int, height: int) -> float:
        """What the far look of a ``width`` x ``height`` frame costs, in near looks (the
        ratio of their input areas); 0 when it does not run."""
        size = self.far_size(width, height)
        near = self._near_size()
        return 0.0 if size is None else size[0] * size[1] / (near[0] * near[1])

    def near_sees(self, box: np.ndarray, width: int, height: int) -> bool:
        """Whether the near look alone finds a face of ``box`` in a ``width`` x ``height``
        frame as reliably as with the far look (always, without a far look)."""
        if self.far_size(width, height) is None:
            return True
        return (box[2] - box[0]) * _near_scale(width, height) >= NEAR_MIN_FACE

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
        chosen = _suppressed(boxes, kept_scores.tolist(), self.score_threshold, self.nms_iou)
        return _largest_first([
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
        found = self._near(image, view)
        far_size = self.far_size(width, height) if far else None
        if far_size is None:
            return found
        self.preprocess(image, far_size)
        small = []
        if view != "mirrored":
            small = self._far_faces(found, width, height, mirrored=False)
        if view == "mirrored" or (view == "auto" and not found and not small
                                  and self.retry_mirrored):
            self.mirror_input()
            small = self._far_faces(found, width, height, mirrored=True)
        return self._merged(found + small) if small else found

    def _far_faces(self, near: list[Detection], width: int, height: int, mirrored: bool
                   ) -> list[Detection]:
        """The far look's faces (the input prepared) that the near look is not competent
        for, and that are not part of a near face (an ear, an earring)."""
        near_scale = _near_scale(width, height)
        least = max(self.score_threshold, FAR_MIN_SCORE)
        return [d for d in self.postprocess(*self.infer(), width, height, mirrored)
                if d.score > least and (d.box[2] - d.box[0]) * near_scale < NEAR_MIN_FACE
                and not any(_part_of(d.box, n.box) for n in near)]

    def _near(self, image: np.ndarray, view: str) -> list[Detection]:
        width, height = image.shape[1], image.shape[0]
        self.preprocess(image)
        if view != "mirrored":
            found = self.postprocess(*self.infer(), width, height)
            if found or view == "plain" or not self.retry_mirrored:
                return found
        self.mirror_input()
        return self.postprocess(*self.infer(), width, height, mirrored=True)

    def _merged(self, detections: list[Detection]) -> list[Detection]:
        """The looks' detections, overlaps suppressed, largest first."""
        chosen = _suppressed(np.array([d.box for d in detections]),
                             [d.score for d in detections], 0.0, self.nms_iou)
        return _largest_first([detections[i] for i in chosen])
