"""Validation and conversion of input images to contiguous 8-bit BGR.

The pipeline works on one format, ``H x W x 3`` uint8 BGR; everything a caller may reasonably
pass (grey, BGRA, 16-bit, float in [0, 1], non-contiguous views) is converted here, once, at the
edge. Anything that cannot be an image raises :class:`~dense_head_pose.errors.ImageError`.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import warnings

import cv2
import numpy as np
from PIL import Image as PILImage

from .errors import ImageError

#: Larger images are refused rather than risking memory exhaustion (450 MB as BGR).
MAX_PIXELS = 150_000_000
#: Larger image files are refused before they are read.
MAX_FILE_BYTES = 512 * 1024 * 1024


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
    check_pixels(image.shape[1], image.shape[0])
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def check_pixels(width: int, height: int) -> None:
    """:class:`ImageError` for an image of more than :data:`MAX_PIXELS` pixels (checked
    before anything is allocated for it)."""
    if width * height > MAX_PIXELS:
        raise ImageError(f"image of {width}x{height} pixels exceeds {MAX_PIXELS} pixels")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype.byteorder not in ("=", "|") and image.dtype != image.dtype.newbyteorder("="):
        image = image.astype(image.dtype.newbyteorder("="))  # big-endian data: native order
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        scaled = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {image.dtype}: expected 8- or 16-bit unsigned "
                     "integers, floats or booleans")


def declared_size(data: bytes | memoryview | np.ndarray) -> tuple[int, int]:
    """(width, height) a compressed image's header declares, read without decoding it.

    A few hundred bytes of PNG can declare 30000 x 30000 pixels (a decompression bomb):
    the size is checked against :data:`MAX_PIXELS` before a single pixel is decoded. Raises
    :class:`ImageError` for data whose format is not recognised."""
    raw = memoryview(data).cast("B")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(raw)) as header:
                return int(header.size[0]), int(header.size[1])
    except PILImage.DecompressionBombError as exc:
        raise ImageError(f"compressed image declares a size that exceeds {MAX_PIXELS} "
                         f"pixels ({exc})") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # PIL.UnidentifiedImageError is OSError
        size = _other_header_size(raw)
        if size is not None:
            return size
        reason = "" if "cannot identify" in str(exc) else f": {exc}"
        raise ImageError("compressed image of an unrecognised or corrupt format (JPEG, PNG, "
                         f"BMP, TIFF, WebP, PNM, Radiance HDR, PFM ... are read){reason}") \
            from None


def _other_header_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from the header of a format OpenCV decodes and Pillow does not
    identify: floating-point TIFF, Radiance HDR, colour PFM; None if it is none of them."""
    head = bytes(data[:4096])
    if head[:4] in (b"II*\0", b"MM\0*"):
        return _tiff_size(data)
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        match = re.search(rb"\n\n[-+]Y (\d+) [-+]X (\d+)", head)
        return (int(match[2]), int(match[1])) if match else None
    match = re.match(rb"P[Ff]\s+(\d+)\s+(\d+)\s", head)
    return (int(match[1]), int(match[2])) if match else None


def _tiff_size(head: memoryview) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of a TIFF's first directory."""
    order = "<" if bytes(head[:2]) == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", head, 4)
        (count,) = struct.unpack_from(order + "H", head, offset)
        tags = {}
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", head, offset + 2 + 12 * i)
            if tag in (256, 257):
                tags[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), value)[0]
    except struct.error:
        return None
    return (int(tags[256]), int(tags[257])) if 256 in tags and 257 in tags else None


def decode(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode compressed image bytes (JPEG, PNG, ...) to 8-bit BGR.

    The header's size is checked first (:func:`declared_size`). Raises :class:`ImageError`
    on empty, truncated, corrupt or oversized data instead of returning None.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buffer.size == 0:
        raise ImageError("empty compressed image")
    buffer = np.ascontiguousarray(buffer.reshape(-1), dtype=np.uint8)
    check_pixels(*declared_size(buffer))
    if buffer[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in buffer[-64:].tobytes():
        # OpenCV 4.5 (Ubuntu 22.04's) decodes a cut-off JPEG, its missing rows grey; 5.0 does
        # not: refuse it everywhere, faces found in half a frame are no answer
        raise ImageError(f"truncated JPEG: {buffer.size} bytes without its end-of-image "
                         "marker")
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"compressed image does not decode: {exc}") from exc
    if image is None:
        raise ImageError(f"compressed image of {buffer.size} bytes does not decode "
                         "(corrupt, truncated or unknown format)")
    return as_bgr8(image)


def read_file(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or :class:`ImageError`.

    Devices (``/dev/zero``), pipes (which would block) and directories are refused before
    anything is read; the file is opened without blocking, checked with ``fstat`` (no race
    with a swapped path) and read no further than the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{path} is not a regular file")
        raise ImageError(f"{path} is {info.st_size} bytes, more than the {limit} an image "
                         "file may have")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew while we read it
        raise ImageError(f"{path} is more than {limit} bytes")
    return data


def read(path: str) -> np.ndarray:
    """Read an image file as 8-bit BGR, or raise :class:`ImageError` saying why not."""
    data = read_file(path)
    try:
        return decode(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from exc
