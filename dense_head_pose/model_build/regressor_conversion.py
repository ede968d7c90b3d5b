"""3DDFA_V2's MobileNet-V1 (width 0.5) 3DMM regressor: PyTorch checkpoint to LiteRT.

The checkpoint (``weights/mb05_120x120.pth``) is read by :mod:`.checkpoint`
(no torch), batch normalisation is folded into the convolutions, and the graph is written by
:mod:`dense_head_pose.model_build.tflite_writer` (no TensorFlow):

* input ``1x120x120x3`` float32, BGR, raw 0..255: ``(x - 127.5) / 128`` in the graph
  (3DDFA_V2's ``NormalizeGjz``), kept as two operators rather than folded into the first
  convolution, whose zero padding would then pad with grey;
* ``conv1`` 3x3 stride 2 and 13 depthwise-separable blocks (3x3 depthwise, 1x1 pointwise),
  each followed by its batch normalisation and ReLU; PyTorch pads 1 pixel on every side,
  TFLite's SAME pads the odd pixel at the end only, so a stride-2 convolution of an even
  input gets an explicit PAD and VALID;
* global average pooling and the fully connected layer to 62 parameters (``fc_param``; the
  checkpoint's ``fc_lm`` landmark head is left out, as 3DDFA_V2 does), de-normalised
  with ``param_mean_std_62d_120x120.pkl`` folded into its weights (``p * std + mean``).

The arithmetic is float64 until the weights are stored as float32, in a fixed order, so the
same upstream files always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .checkpoint import Checkpoint, f32
from .safe_pickle import load_numpy_pickle
from .tflite_writer import SAME, VALID, Graph

INPUT_SIZE = 120
N_PARAMS = 62
#: (block, stride) of 3DDFA_V2's models/mobilenet_v1.py
BLOCKS = (("dw2_1", 1), ("dw2_2", 2), ("dw3_1", 1), ("dw3_2", 2), ("dw4_1", 1), ("dw4_2", 2),
          ("dw5_1", 1), ("dw5_2", 1), ("dw5_3", 1), ("dw5_4", 1), ("dw5_5", 1), ("dw5_6", 2),
          ("dw6", 1))


def convert(checkpoint: Path, mean_std: Path) -> bytes:
    """The regressor as ``.tflite`` bytes (see module)."""
    state = Checkpoint(checkpoint, "3DDFA_V2's MobileNet-V1 checkpoint")
    stats = load_numpy_pickle(mean_std)
    if not isinstance(stats, dict) or not {"mean", "std"} <= set(stats):
        raise ModelError(f"{mean_std}: expected a dict with 'mean' and 'std'")
    mean = np.asarray(stats["mean"], np.float64).reshape(-1)
    std = np.asarray(stats["std"], np.float64).reshape(-1)
    if mean.shape != (N_PARAMS,) or std.shape != (N_PARAMS,) or not (
            np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ModelError(f"{mean_std}: 'mean' and 'std' must be {N_PARAMS} finite numbers")

    g = Graph("dense_head_pose: 3DDFA_V2 mb05_120x120 (MIT), converted by models build")
    x = g.tensor("input_bgr", (1, INPUT_SIZE, INPUT_SIZE, 3))
    g.inputs.append(x)
    x = g.scalar_op("sub", x, 127.5, "normalise/sub")
    x = g.scalar_op("mul", x, 1.0 / 128.0, "normalise/mul")

    def conv(x: int, weight: np.ndarray, bias: np.ndarray, stride: int, name: str,
             depthwise: bool) -> int:
        # PyTorch OIHW -> TFLite OHWI (1HWC for depthwise, whose I is 1)
        tf_weight = weight.transpose(1, 2, 3, 0) if depthwise else weight.transpose(0, 2, 3, 1)
        k = weight.shape[2]
        if k == 1:
            padding = VALID
        elif stride == 2 and g.shape(x)[1] % 2 == 0:  # see module: PyTorch pads both sides
            x = g.pad(x, k // 2, f"{name}/pad")
            padding = VALID
        else:
            padding = SAME
        return g.conv(x, f32(tf_weight), f32(bias), stride, padding, name, depthwise)

    weight, bias = state.folded("conv1", "bn1")
    if weight.shape[1:] != (3, 3, 3):
        raise ModelError(f"{checkpoint}: conv1 is {weight.shape}, expected (C, 3, 3, 3)")
    x = conv(x, weight, bias, 2, "conv1", depthwise=False)
    for block, stride in BLOCKS:
        channels = g.shape(x)[3]
        weight, bias = state.folded(f"{block}.conv_dw", f"{block}.bn_dw")
        if weight.shape != (channels, 1, 3, 3):
            raise ModelError(f"{checkpoint}: {block}.conv_dw is {weight.shape}, expected "
                             f"({channels}, 1, 3, 3)")
        x = conv(x, weight, bias, stride, f"{block}/depthwise", depthwise=True)
        weight, bias = state.folded(f"{block}.conv_sep", f"{block}.bn_sep")
        if weight.shape[1:] != (channels, 1, 1):
            raise ModelError(f"{checkpoint}: {block}.conv_sep is {weight.shape}, expected "
                             f"(C, {channels}, 1, 1)")
        x = conv(x, weight, bias, 1, f"{block}/pointwise", depthwise=False)
    x = g.spatial_mean(x, "pool")
    # (the checkpoint also holds fc_lm, a 68-landmark head used in training: not needed)
    fc_weight = state.take("fc_param.weight", (N_PARAMS, g.shape(x)[1]))
    fc_bias = state.take("fc_param.bias", (N_PARAMS,))
    # the parameters' de-normalisation, p * std + mean, folded into the last layer
    x = g.dense(x, f32(fc_weight * std[:, None]), f32(fc_bias * std + mean), "params")
    g.outputs.append(x)
    return g.serialize()
