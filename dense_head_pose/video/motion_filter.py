"""Smoothing that steadies a still head and follows a moving one without lag.

Each smoothed quantity (a group of numbers: the rotation's three angles, the face's image
position, its scales, its coefficients) is filtered by two Kalman filters at once, mixed by
how well each explains the samples (an interacting multiple model, Blom and Bar-Shalom
1988):

* the **still** model says the quantity stays where it is, up to a slow random walk
  (``drift``): while it explains the samples, the estimate is the running mean of many of
  them, and jitter falls with their number;
* the **moving** model says it moves at a velocity that changes at random
  (``acceleration``): a constant-velocity filter, which follows a steady turn with no lag
  at all.

Each frame, the probability of each model is updated from the size of its prediction error
against the measurement noise (``noise``): noise alone keeps the still model, a real
movement makes the moving model likely within a frame or two, and the output moves with it.
Unlike a low-pass whose cutoff rises with a speed estimate (the One-Euro filter), nothing
waits for a filtered speed to build up, and a steady motion is predicted rather than
trailed.

Noise is given for a face whose crop is :data:`REFERENCE_SIDE` pixels wide; a smaller face
is noisier in its own units (image noise is about constant in pixels), so the caller passes
a scale per sample (``noise_scale``) that multiplies the noise and both models' process
noise alike: what counts as motion rises with the noise, and the filters keep their
character at every face size.

Time rules: the first sample passes unchanged; a sample less than :data:`MIN_STEP_S` after
the previous one returns the previous estimate (a repeated frame carries no new time); a
timestamp going backwards, or one more than :data:`MAX_GAP_S` after the previous, restarts
the filter at that sample (a looping bag, a stream that stalled: a prediction across the gap
would be a guess).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..options import check_fields

#: Time steps below this (seconds) count as the same instant.
MIN_STEP_S = 1e-6
#: A gap longer than this (seconds) restarts the filter (see module).
MAX_GAP_S = 1.0
#: Crop side (pixels) for which :attr:`MotionParams.noise` is given.
REFERENCE_SIDE = 150.0
#: The noise seen is averaged over about this many seconds (see ``MotionFilter.__call__``).
_EXCESS_TIME_S = 2.0
#: One sample of one number counts at most this many times the noise variance seen so far.
_EXCESS_SAMPLE_MAX = 9.0
#: The noise seen is used once this many third differences have been measured.
_EXCESS_MIN_SAMPLES = 3


@dataclass(frozen=True)
class MotionParams:
    """The filter of one quantity, in that quantity's units (see :class:`.SmoothingOptions`).

    ``noise``: standard deviation of one estimate of a still face :data:`REFERENCE_SIDE`
    pixels wide. ``drift``: how far a still quantity may wander, standard deviation per
    square root of a second; lower is steadier. ``acceleration``: how abruptly a moving one
    may change speed, standard deviation of its acceleration per square root of a second;
    higher follows sudden turns more closely and lets more noise through while moving.
    """

    noise: float
    drift: float
    acceleration: float

    KINDS: ClassVar[dict[str, type]] = {"noise": float, "drift": float, "acceleration": float}
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "noise": (1e-9, 1e9), "drift": (0.0, 1e9), "acceleration": (1e-9, 1e12)}
    """Inclusive range of each parameter (the CLI and the node take theirs from here)."""

    def __post_init__(self) -> None:
        check_fields(self, self.KINDS, self.LIMITS)


class MotionFilter:
    """The two-model filter of several groups of numbers at once (see module).

    ``groups`` gives each group's size and parameters, and optionally the unit its samples
    are in, as a multiple of the parameters' unit (radians for parameters in degrees);
    samples are flat vectors of all groups in order. Every number has its own state and
    covariance; each group has its own model probabilities, decided by all of its numbers
    together, and its own measure of the noise actually seen.
    """

    def __init__(self, groups: Sequence[tuple[Any, ...]], switch_rate: float = 0.3) -> None:
        sizes = [int(g[0]) for g in groups]
        units = np.repeat([float(g[2]) if len(g) > 2 else 1.0 for g in groups], sizes)
        self._starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self._group = np.repeat(np.arange(len(sizes)), sizes)
        self._sizes = np.asarray(sizes, dtype=np.float64)
        params = [g[1] for g in groups]
        self._noise = np.repeat([p.noise for p in params], sizes) * units
        self._drift = (np.repeat([p.drift for p in params], sizes) * units) ** 2
        self._accel = (np.repeat([p.acceleration for p in params], sizes) * units) ** 2
        self.switch_rate = float(switch_rate)
        self._t: float | None = None
        self.x = np.zeros(0)
        """The current estimate (empty before the first sample)."""

    @property
    def still_probability(self) -> np.ndarray:
        """Per group, the probability that the quantity is still (1.0 before any motion)."""
        if self._t is None:
            return np.ones(len(self._sizes))
        return self._mu[0].copy()

    @property
    def variance(self) -> np.ndarray:
        """The variance of :attr:`x` per number: each model's, and the spread between
        them, weighted by their probabilities (empty before the first sample)."""
        if self._t is None:
            return np.zeros(0)
        return self._mixed_variance(self._mu, self._xs[:, 0], self._ps[:, 0, 0])

    def predicted(self, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The estimate and its variance predicted at ``t`` (at or after the last sample,
        within :data:`MAX_GAP_S`) without taking a sample; None when there is no state to
        predict from."""
        if self._t is None or t < self._t or t - self._t > MAX_GAP_S:
            return None
        prior, x, cov = self._predict(max(t - self._t, 0.0), self._scale ** 2)
        mu = prior[:, self._group]
        return (np.einsum("jn,jn->n", mu, x[:, 0]),
                self._mixed_variance(prior, x[:, 0], cov[:, 0, 0]))

    def _mixed_variance(self, mu: np.ndarray, x: np.ndarray, var: np.ndarray) -> np.ndarray:
        w = mu[:, self._group]
        mean = np.einsum("jn,jn->n", w, x)
        return np.einsum("jn,jn->n", w, var + (x - mean) ** 2)

    def reset(self) -> None:
        """Forget the state; the next sample passes unchanged."""
        self._t = None
        self.x = np.zeros(0)

    def shift(self, index: slice, delta: np.ndarray) -> None:
        """Move the estimate of ``index`` by ``-delta`` in every model: re-expresses the state
        when the caller changes the origin its samples are measured from (the rotation's
        tangent space, re-centred on each new estimate)."""
        if self._t is not None:
            self._xs[:, 0, index] -= delta
            self.x[index] -= delta

    def __call__(self, z: np.ndarray, t: float, noise_scale: np.ndarray) -> np.ndarray:
        """Filter sample ``z`` (flat, all groups) taken at ``t`` seconds; ``noise_scale``
        per group multiplies its noise and process noise (see module)."""
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        scale = self._scale = np.asarray(noise_scale, dtype=np.float64)[self._group]
        if (self._t is None or t < self._t or t - self._t > MAX_GAP_S
                or z.size != self._group.size):
            return self._start(z, t, (self._noise * scale) ** 2)
        dt = t - self._t
        if dt < MIN_STEP_S:
            return self.x.copy()
        self._t = t
        base_r = (self._noise * scale) ** 2
        r = base_r * self._excess[self._group]  # the noise seen so far; this sample's next
        prior, x, cov = self._predict(dt, scale ** 2)
        self._measure_excess(z, base_r, dt)
        # update both with the measurement; each model's likelihood per group
        nu = z - x[:, 0]  # (model, n)
        s = cov[:, 0, 0] + r
        k0, k1 = cov[:, 0, 0] / s, cov[:, 1, 0] / s
        x[:, 0] += k0 * nu
        x[:, 1] += k1 * nu
        cov[:, 1, 1] -= k1 * cov[:, 0, 1]
        cov[:, 0, 1] -= k0 * cov[:, 0, 1]
        cov[:, 1, 0] = cov[:, 0, 1]
        cov[:, 0, 0] -= k0 * cov[:, 0, 0]
        terms = nu * nu / s + np.log(s)
        loglik = -0.5 * np.add.reduceat(terms, self._starts, axis=1)
        loglik -= loglik.max(axis=0)
        mu = prior * np.exp(loglik)
        self._mu = mu / mu.sum(axis=0)
        self._xs, self._ps = x, cov
        self.x = np.einsum("jn,jn->n", self._mu[:, self._group], x[:, 0])
        return self.x.copy()

    def _predict(self, dt: float, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both models mixed and predicted ``dt`` ahead (``q``: the process noise scale per
        number); the models' prior probabilities, states and covariances."""
        # mixing: each model starts from the estimates of both, weighted by how likely
        # the chain is to have come from each (a two-state Markov chain of the mode)
        p = 0.5 * (1.0 - math.exp(-2.0 * self.switch_rate * dt))
        trans = np.array([[1.0 - p, p], [p, 1.0 - p]])
        prior = trans.T @ self._mu  # (model, group)
        weight = trans[:, :, None] * self._mu[:, None, :] / np.maximum(prior[None], 1e-300)
        w = weight[:, :, self._group]  # (from, to, n)
        xs0 = np.einsum("ijn,ian->jan", w, self._xs)
        d = self._xs[:, None] - xs0[None]  # (from, to, 2, n)
        ps0 = np.einsum("ijn,iabn->jabn", w, self._ps) + np.einsum(
            "ijn,ijan,ijbn->jabn", w, d, d)
        # predict: still (velocity held at zero, a random walk) and moving (constant velocity)
        x = xs0.copy()
        x[0, 1] = 0.0
        x[1, 0] += dt * xs0[1, 1]
        cov = np.empty_like(ps0)
        cov[0, 0, 0] = ps0[0, 0, 0] + self._drift * q * dt
        cov[0, 0, 1] = cov[0, 1, 0] = cov[0, 1, 1] = 0.0
        a = self._accel * q
        p00, p01, p11 = ps0[1, 0, 0], ps0[1, 0, 1], ps0[1, 1, 1]
        cov[1, 0, 0] = p00 + 2 * dt * p01 + dt * dt * p11 + a * dt ** 3 / 3
        cov[1, 0, 1] = cov[1, 1, 0] = p01 + dt * p11 + a * dt * dt / 2
        cov[1, 1, 1] = p11 + a * dt
        return prior, x, cov

    def _measure_excess(self, z: np.ndarray, base_r: np.ndarray, dt: float) -> None:
        """Per group, the measurement noise actually seen, as a multiple of the floor
        ``noise``: from the third differences of the samples themselves, which cancel any
        motion of steady speed or steady acceleration and keep the noise (twenty times its
        variance, for white noise at a steady frame rate), so the estimate does not depend
        on what the filter believes. Samples at uneven steps (a dropped frame) are not
        measured. It moves over about :data:`_EXCESS_TIME_S`, and one odd sample moves it
        little."""
        recent = self._recent
        times = [t for _, t in recent] + [self._t]
        steps = np.diff(times) if len(recent) == 3 else np.zeros(0)
        if steps.size and steps.min() > 0.5 * steps.max():
            d3 = z - 3.0 * recent[2][0] + 3.0 * recent[1][0] - recent[0][0]
            seen = np.minimum(d3 * d3 / (20.0 * base_r),
                              _EXCESS_SAMPLE_MAX * self._excess[self._group])
            seen = np.add.reduceat(seen, self._starts) / self._sizes
            self._samples += 1  # the first samples' running mean, then a moving average
            rate = max(1.0 - math.exp(-dt / _EXCESS_TIME_S), 1.0 / self._samples)
            self._seen += rate * (seen - self._seen)
            if self._samples >= _EXCESS_MIN_SAMPLES:
                self._excess = np.maximum(1.0, self._seen)
        recent.append((z.copy(), self._t))
        del recent[:-3]

    def _start(self, z: np.ndarray, t: float, r: np.ndarray) -> np.ndarray:
        n = z.size
        self._t = t
        self._xs = np.zeros((2, 2, n))
        self._xs[:, 0] = z
        self._ps = np.zeros((2, 2, 2, n))
        self._ps[:, 0, 0] = r
        # a face may already be moving when first seen: as fast as a second of noise
        self._ps[1, 1, 1] = r / (1.0 / 30.0) ** 2
        self._mu = np.tile(np.array([[0.9], [0.1]]), (1, len(self._sizes)))
        self._seen = np.ones(len(self._sizes))
        self._excess = np.ones(len(self._sizes))
        self._samples = 0
        self._recent: list[tuple[np.ndarray, float]] = [(z.copy(), t)]
        self.x = z.copy()
        return z.copy()
