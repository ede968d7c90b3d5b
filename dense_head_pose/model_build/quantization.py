"""The int8 regressor: post-training quantisation with ai-edge-quantizer, calibrated on crops
the regressor really sees.

``models build --precision int8 --calibration PATH...`` quantises the float regressor the
build has just made: its convolutions (and the padding between them), but for the last few
(:data:`INT8_LAYERS`), take int8 weights (per channel) and int8 activations (per tensor),
calibrated on face crops from the given videos, images or folders. Those last layers, the
global pooling and the fully connected layer stay float: the 62 parameters span many orders
of magnitude (one int8 scale for all of them destroyed the shape and expression
coefficients), and the head pose is read off the last features. Crops are made as the
pipeline makes them (the detector box's ROI, its mirror image, the landmark ROI a tracker
uses) and jittered (position, scale, rotation, brightness) with a fixed seed, so a build
from the same files gives the same model. Calibrate on images of the kind the robot will
see; this project calibrates on its test video and stills, never on the benchmark.

``ai-edge-quantizer`` is an optional extra (``pip install 'dense_head_pose[quantize]'``),
needed only to build the model, never to run it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..model_pack import INT8_REGRESSOR

INT8_NAME = INT8_REGRESSOR
#: Layers (by output tensor name) made int8: all convolutions but the stride-2 block
#: ``dw5_6`` (8x8 -> 4x4) and the depthwise half of the last block. Measured on AFLW2000-3D
#: (every 2nd image, own detector, defaults; float: NME 3.73 %, MAE 3.83 deg), inference time
#: against float and the change in NME / MAE: everything int8 0.50x, +0.02 / +0.13 (stride 4,
#: one pass); without dw5_6 0.50x, +0.02 / +0.10; without dw5_6 and dw6 0.56x, +0.01 /
#: +0.03; without dw5_6 and dw6's pointwise 0.57x, +0.03 / +0.10; without dw5_6 and dw6's
#: depthwise 0.51x, +0.00 / +0.03 (chosen). int16 activations have no fast kernel (25x).
INT8_LAYERS = r"^(?!dw5_6/|dw6/depthwise).*"
CROPS_PER_FACE = 6
SEED = 20240


def calibration_frames(paths: Iterable[str | Path]) -> Iterator[np.ndarray]:
    """The frames of videos, image files and folders of images, in order."""
    from .. import images
    from ..video.sources import IMAGE_SUFFIXES, open_source

    for path in paths:
        path = Path(path)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield images.read(str(path))
        else:
            with open_source(str(path)) as source:
                for _, frame in source:
                    yield frame


def calibration_crops(estimator: object, frames: Iterable[np.ndarray],
                      limit: int = 600) -> list[np.ndarray]:
    """Regressor inputs (1x120x120x3 float32) from the faces of ``frames`` (see module)."""
    from ..pipeline.alignment import roi_from_landmarks

    rng = np.random.default_rng(SEED)
    crops: list[np.ndarray] = []
    regressor = estimator.regressor  # type: ignore[attr-defined]
    for frame in frames:
        for face in estimator(frame).faces:  # type: ignore[operator]
            for k in range(CROPS_PER_FACE):
                roi = face.roi if k % 3 != 2 else roi_from_landmarks(face.landmarks)
                image = _jittered(frame, roi, rng)
                crop = regressor.crop(image, _jittered_roi(roi, rng)).astype(np.float32)[None]
                crops.append(crop[:, :, ::-1].copy() if k % 2 else crop)
                if len(crops) >= limit:
                    return crops
    if len(crops) < 32:
        raise ModelError(f"only {len(crops)} calibration crops: give videos or images with "
                         "faces (--calibration)")
    return crops


def _jittered_roi(roi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = roi[2] - roi[0]
    centre = (roi[:2] + roi[2:]) / 2 + rng.uniform(-0.06, 0.06, 2) * side
    half = side * rng.uniform(0.9, 1.1) / 2
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def _jittered(frame: np.ndarray, roi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame rotated about the ROI centre (+-15 deg) with brightness and contrast
    changed a little."""
    centre = ((roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2)
    matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(-15, 15)), 1.0)
    out = cv2.warpAffine(frame, matrix, (frame.shape[1], frame.shape[0]),
                         borderMode=cv2.BORDER_REFLECT)
    gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    return cv2.convertScaleAbs(out, alpha=float(gain), beta=float(bias))


@contextlib.contextmanager
def _progress_bars_as_tqdm_says() -> Iterator[None]:
    """ai-edge-quantizer forces its calibration bar on (thousands of steps, a line each in
    a log): show it only where tqdm would, on a terminal and without ``TQDM_DISABLE``."""
    try:
        from ai_edge_quantizer.utils import progress_utils
    except ImportError:
        yield
        return
    original = progress_utils.ProgressBar
    show = sys.stderr is not None and sys.stderr.isatty() and \
        os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")

    class Bar(original):  # type: ignore[misc, valid-type]
        def __init__(self, total_steps: int, description: str = "",
                     disappear_on_finish: bool = False, enable: bool | None = None) -> None:
            super().__init__(total_steps, description, disappear_on_finish,
                             enable=show and enable is not False)

    progress_utils.ProgressBar = Bar
    try:
        yield
    finally:
        progress_utils.ProgressBar = original


def quantize(float_model: Path, crops: list[np.ndarray],
             log: Callable[[str], None] = print) -> bytes:
    """The int8 model of ``float_model`` calibrated on ``crops`` (see module)."""
    try:
        from ai_edge_quantizer import quantizer, recipe_manager
        from ai_edge_quantizer.qtyping import TFLOperationName
    except ImportError as exc:
        raise ModelError("the int8 build needs ai-edge-quantizer: pip install "
                         "'dense_head_pose[quantize]'") from exc
    manager = recipe_manager.RecipeManager()
    for op in (TFLOperationName.CONV_2D, TFLOperationName.DEPTHWISE_CONV_2D,
               TFLOperationName.PAD):
        manager.add_static_config(regex=INT8_LAYERS, operation_name=op,
                                  activation_num_bits=8, weight_num_bits=8)
    qt = quantizer.Quantizer(str(float_model))
    qt.load_quantization_recipe(manager.get_quantization_recipe())
    log(f"calibrating on {len(crops)} crops")
    with warnings.catch_warnings(), _progress_bars_as_tqdm_says():
        warnings.simplefilter("ignore", UserWarning)  # its interpreter keeps every tensor
        calibration = qt.calibrate({"serving_default": [{"input_bgr": c} for c in crops]},
                                   num_threads=1)
        result = qt.quantize(calibration, enable_progress_report=False)
    data = bytes(result.quantized_model)
    if not data or math.isnan(len(data)):
        raise ModelError("ai-edge-quantizer returned no model")
    return data
