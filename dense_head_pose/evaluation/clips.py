"""Synthetic clips made from real stills, with the motion known: a still head with sensor
and sampling jitter, a head rotating and sweeping in the image plane, a head turning out of
it (its fitted 3DMM redrawn, :mod:`.synthetic`), a head crossing the frame. Every frame gets
Gaussian noise and a JPEG round trip; frames are made one at a time (see :class:`Clip`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..pipeline.results import Face
from .synthetic import TurningHead, axis_rotation

FPS = 30.0


@dataclass(frozen=True)
class Motion:
    """What was done to the clean image in one frame: an image transform (2x3), or the head
    turned about its centre by a model-space rotation; and the driven coordinate: the angle
    of the turn (degrees), or for a crossing, the sideways shift (pixels)."""

    transform: np.ndarray = field(default_factory=lambda: np.eye(2, 3))
    rotation: np.ndarray | None = None
    angle_deg: float = 0.0
    shift_px: float = 0.0


@dataclass
class Clip:
    """A synthetic clip: a clean image moved per frame (:class:`Motion`), with noise. Frames
    are made as they are iterated (:meth:`frames`), one at a time, never held: a clip of
    large frames costs one frame of memory, not all of them."""

    name: str
    image: np.ndarray
    times: list[float]
    motions: list[Motion]
    seed: int
    head: TurningHead | None = None
    axis: str = "roll"

    def clean(self, motion: Motion) -> np.ndarray:
        """The frame of ``motion`` before noise."""
        if motion.rotation is not None:
            assert self.head is not None
            return self.head.draw(motion.rotation)
        h, w = self.image.shape[:2]
        return cv2.warpAffine(self.image, motion.transform, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def unmoved(self) -> np.ndarray:
        """The clean frame of no motion: what the references are estimated on."""
        return self.clean(Motion(rotation=np.eye(3) if self.head is not None else None))

    def frames(self) -> Iterator[np.ndarray]:
        """The noisy frames, in order (the same ones on every call)."""
        rng = np.random.default_rng(self.seed + 1000)
        pool = noise_pool(rng)
        for motion in self.motions:
            yield noisy(self.clean(motion), rng, pool=pool)

    def timed(self) -> Iterator[tuple[float, np.ndarray]]:
        """``(seconds, frame)`` pairs."""
        yield from zip(self.times, self.frames())


#: Values of a noise pool (:func:`noise_pool`); each band of a frame takes its noise from a
#: random place in it.
_POOL_SIZE = 1 << 22
_BAND = 1 << 20


def noise_pool(rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    """Gaussian noise of standard deviation ``sigma``, rounded to whole grey levels, that
    :func:`noisy` draws from: a frame's noise is a slice at a random offset, which costs a
    copy instead of a normal draw per pixel."""
    return np.round(rng.standard_normal(_POOL_SIZE) * sigma).astype(np.int16)


def noisy(image: np.ndarray, rng: np.random.Generator, quality: int = 85,
          sigma: float = 4.0, pool: np.ndarray | None = None) -> np.ndarray:
    """Gaussian noise (from ``pool``, made with ``sigma`` when not given), then a JPEG round
    trip; in bands, so a large frame never has a wider copy of itself in memory."""
    pool = noise_pool(rng, sigma) if pool is None else pool
    out = np.empty_like(image)
    source, target = image.reshape(-1), out.reshape(-1)
    for start in range(0, source.size, _BAND):
        part = source[start:start + _BAND].astype(np.int16)
        offset = int(rng.integers(0, pool.size - part.size + 1))
        part += pool[offset:offset + part.size]
        np.clip(part, 0, 255, out=part)
        target[start:start + _BAND] = part
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def times_at(n: int) -> list[float]:
    return [i / FPS for i in range(n)]


def still_clip(image: np.ndarray, n: int = 90, seed: int = 0) -> Clip:
    """The still-head clip (see module)."""
    rng = np.random.default_rng(seed)
    motions = []
    for _ in range(n):
        dx, dy = rng.uniform(-0.7, 0.7, 2) / math.sqrt(2.0)  # |shift| <= 0.7 px
        motions.append(Motion(np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])))
    return Clip("still", image, times_at(n), motions, seed)


def moving_clip(image: np.ndarray, n: int = 120, seed: int = 1, amplitude_deg: float = 20.0,
                rotation_hz: float = 0.5, sweep: float = 0.10, sweep_hz: float = 0.25) -> Clip:
    """The in-plane (roll) clip (see module); the principal point is the image centre."""
    h, w = image.shape[:2]
    motions = []
    for t in times_at(n):
        angle = amplitude_deg * math.sin(2 * math.pi * rotation_hz * t)
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        m[0, 2] += sweep * w * math.sin(2 * math.pi * sweep_hz * t)
        motions.append(Motion(m, None, angle))
    return Clip("roll", image, times_at(n), motions, seed)


def turning_clip(image: np.ndarray, face: Face, axis: str, amplitude_deg: float,
                 hz: float, n: int = 120, seed: int = 2) -> Clip:
    """``face`` of ``image`` turned about its own ``axis`` (``yaw``, ``pitch``) by
    ``amplitude_deg * sin(2 pi hz t)`` (see :mod:`.synthetic`)."""
    head = TurningHead(image, face)
    motions = []
    for t in times_at(n):
        angle = amplitude_deg * math.sin(2 * math.pi * hz * t)
        motions.append(Motion(rotation=axis_rotation(axis, angle), angle_deg=angle))
    return Clip(axis, image, times_at(n), motions, seed, head, axis)




def crossing_clip(image: np.ndarray, n: int = 90, seed: int = 3, reach: float = 0.3) -> Clip:
    """The head crossing the frame: the image shifted sideways from ``-reach`` to ``+reach``
    of its width, easing in and out (half a cosine), fastest mid-way."""
    width, times = image.shape[1], times_at(n)
    motions = []
    for t in times:
        shift = -reach * width * math.cos(math.pi * t / times[-1])
        motions.append(Motion(np.array([[1.0, 0.0, shift], [0.0, 1.0, 0.0]]),
                              shift_px=shift))
    return Clip("cross", image, times_at(n), motions, seed, axis="cross")
