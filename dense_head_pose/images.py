"""Validation and conversion of input images to contiguous 8-bit BGR.

The pipeline works on one format, ``H x W x 3`` uint8 BGR; everything a caller may reasonably
pass (grey, BGRA, 16-bit, float in [0, 1], non-contiguous views) is converted here, once, at the
edge. Anything that cannot be an image raises :class:`~dense_head_pose.errors.ImageError`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import ImageError

#: Larger images are refused rather than risking memory exhaustion (about 1 GB as BGR).
MAX_PIXELS = 400_000_000


def as_bgr8(image: object) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``H x W x 3`` uint8 BGR array.

    Accepts ``H x W`` / ``H x W x 1`` grey, ``H x W x 3`` BGR, ``H x W x 4`` BGRA; dtypes uint8,
    uint16 (high byte kept), and float (values in [0, 1], NaN becomes 0). Views and strided
    arrays are copied to contiguous memory, because OpenCV and the native renderer need it.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageError(f"unsupported image shape {image.shape}: expected HxW, HxWx3 or HxWx4")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"empty image of shape {image.shape}")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"image of {image.shape[1]}x{image.shape[0]} pixels exceeds "
                         f"{MAX_PIXELS} pixels")
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        scaled = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {image.dtype}: expected uint8, uint16 or float")


def decode(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode compressed image bytes (JPEG, PNG, ...) to 8-bit BGR.

    Raises :class:`ImageError` on empty, truncated or corrupt data instead of returning None.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buffer.size == 0:
        raise ImageError("empty compressed image")
    try:
        image = cv2.imdecode(buffer.reshape(-1), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"compressed image does not decode: {exc}") from exc
    if image is None:
        raise ImageError(f"compressed image of {buffer.size} bytes does not decode "
                         "(corrupt, truncated or unknown format)")
    return as_bgr8(image)


def read(path: str) -> np.ndarray:
    """Read an image file as 8-bit BGR, or raise :class:`ImageError` saying why not."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return decode(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from exc
