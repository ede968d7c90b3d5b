"""PyTorch checkpoints read as numpy (no torch): the state dict, checked tensors, and a
convolution with its batch normalisation folded into one.

Shared by the conversions of the regressor and the detector
(:mod:`.regressor_conversion`, :mod:`.detector_conversion`). Arithmetic is float64 until
:func:`f32` stores a weight, so the same checkpoint always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .safe_pickle import load_torch_checkpoint

BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which both upstream networks keep


class Checkpoint:
    """The float64 tensors of a checkpoint's state dict (``module.`` prefixes dropped);
    ``kind`` names the network expected, for error messages."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        loaded = load_torch_checkpoint(path)
        state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
        if not isinstance(state, dict):
            raise ModelError(f"{path}: no state_dict in the checkpoint")
        self.tensors: dict[str, np.ndarray] = {}
        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, np.ndarray):
                raise ModelError(f"{path}: state_dict entry {key!r:.60} is not a tensor")
            self.tensors[key.removeprefix("module.")] = value.astype(np.float64)

    def take(self, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """The tensor ``key``, of ``shape`` (None: any size on that axis), all finite."""
        value = self.tensors.get(key)
        if value is None:
            raise ModelError(f"{self.path}: {key} missing: not {self.kind}")
        if len(value.shape) != len(shape) or any(s is not None and s != v
                                                 for s, v in zip(shape, value.shape)):
            raise ModelError(f"{self.path}: {key} has shape {value.shape}, expected {shape}")
        if not np.all(np.isfinite(value)):
            raise ModelError(f"{self.path}: {key} holds non-finite values")
        return value

    def folded(self, conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
        """A bias-free convolution and the batch normalisation after it, as one convolution
        (weight in PyTorch's OIHW layout, bias)."""
        weight = self.take(f"{conv}.weight", (None, None, None, None))
        out = weight.shape[0]
        gamma = self.take(f"{bn}.weight", (out,))
        beta = self.take(f"{bn}.bias", (out,))
        mean = self.take(f"{bn}.running_mean", (out,))
        var = self.take(f"{bn}.running_var", (out,))
        if np.any(var < 0):
            raise ModelError(f"{self.path}: {bn}.running_var has negative values")
        scale = gamma / np.sqrt(var + BN_EPS)
        return weight * scale[:, None, None, None], beta - mean * scale

    def biased(self, conv: str) -> tuple[np.ndarray, np.ndarray]:
        """A convolution with its own bias (weight OIHW, bias)."""
        weight = self.take(f"{conv}.weight", (None, None, None, None))
        return weight, self.take(f"{conv}.bias", (weight.shape[0],))


def f32(array: np.ndarray) -> np.ndarray:
    """``array`` as C-ordered float32, the stored precision."""
    return np.array(array, dtype=np.float32, order="C")
