"""The "Ultra-Light" RFB face detector: PyTorch checkpoint to LiteRT, at any input size.

Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB publishes the RFB network trained at
320x240 (``version-RFB-320.pth``) and at 640x480 (``version-RFB-640.pth``); only the first
was published as TFLite, and that file's dilated convolutions were converted into
SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND with paddings fixed for 320x240, so it cannot be
resized to an arbitrary input. This conversion writes the network with dilated CONV_2D
operators, which LiteRT resizes to any input: the detector then follows the frame.

The checkpoint is read by :mod:`.checkpoint` (no torch), batch normalisation folded, and
the graph written by :mod:`.tflite_writer` (no TensorFlow), after upstream's
``vision/nn/mb_tiny_RFB.py`` and ``vision/ssd/mb_tiny_RFB_fd.py``:

* input ``1xHxWx3`` float32, RGB already normalised to about [-1, 1]
  (:meth:`~dense_head_pose.pipeline.detection.FaceDetector.preprocess` does it, as for the
  upstream TFLite file); written at 320x240 and resized at load;
* the backbone: a 3x3 stride-2 convolution, twelve depthwise-separable blocks and one RFB
  block (three branches of 1x1, 3x3 and dilated 3x3 convolutions, dilations 2, 3 and 5,
  concatenated, a linear 1x1, plus a 1x1 shortcut, ReLU); PyTorch pads a stride-2
  convolution by one pixel on every side, so those get an explicit PAD and VALID (TFLite's
  SAME would put the odd pixel at the end only);
* four heads on the maps of strides 8, 16, 32 and 64 (the last after an extra 1x1 and
  separable stride-2 layer): depthwise 3x3 + ReLU + pointwise 1x1, the last a plain 3x3;
  each reshaped to (1, -1, 4) box regressions and (1, -1, 2) class logits, concatenated in
  level order, the logits through softmax.

Outputs: regressions ``(1, N, 4)`` then scores ``(1, N, 2)``, the rows in the order of
:func:`~dense_head_pose.pipeline.detection.make_priors`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .checkpoint import Checkpoint, f32
from .tflite_writer import NONE, RELU, SAME, VALID, Graph

#: The nominal input the graph is written at (width, height); LiteRT resizes it at load.
WRITTEN_INPUT = (320, 240)
BASE = 16
#: (output channels, stride) of the backbone's depthwise-separable blocks, by index in
#: upstream's ``base_net`` (block 0 is the plain convolution, block 7 the RFB block)
_SEPARABLE = {1: (2 * BASE, 1), 2: (2 * BASE, 2), 3: (2 * BASE, 1), 4: (4 * BASE, 2),
              5: (4 * BASE, 1), 6: (4 * BASE, 1), 8: (8 * BASE, 2), 9: (8 * BASE, 1),
              10: (8 * BASE, 1), 11: (16 * BASE, 2), 12: (16 * BASE, 1)}
#: The backbone blocks after which a head looks (strides 8, 16, 32); the fourth head
#: follows the extra layers (stride 64)
_SOURCES = (7, 10, 12)
_ANCHORS = (3, 2, 2, 3)  # priors per cell, per level
#: RFB branches: (checkpoint layer, stride-1 padding/dilation, ReLU after it)
_RFB_BRANCHES = {
    "branch0": ((0, 0, False), (1, 1, True), (2, 2, False)),
    "branch1": ((0, 0, False), (1, 1, True), (2, 3, False)),
    "branch2": ((0, 0, False), (1, 1, True), (2, 1, True), (3, 5, False)),
}


class _Writer:
    """The graph being written and the checkpoint it is written from."""

    def __init__(self, g: Graph, state: Checkpoint, checkpoint: Path) -> None:
        self.g, self.state, self.checkpoint = g, state, checkpoint

    def conv(self, x: int, weight: np.ndarray, bias: np.ndarray, stride: int, name: str,
             depthwise: bool = False, activation: int = RELU, dilation: int = 1) -> int:
        # PyTorch OIHW -> TFLite OHWI (1HWC for depthwise)
        tf_weight = weight.transpose(1, 2, 3, 0) if depthwise else weight.transpose(0, 2, 3, 1)
        k = weight.shape[2]
        if k == 1:
            padding = VALID
        elif stride == 2:  # PyTorch's one pixel on every side, whatever the input's parity
            x = self.g.pad(x, 1, f"{name}/pad")
            padding = VALID
        else:  # stride 1, padding = dilation: SAME pads the same on both sides
            padding = SAME
        return self.g.conv(x, f32(tf_weight), f32(bias), stride, padding, name, depthwise,
                           activation, dilation)

    def expect(self, weight: np.ndarray, shape: tuple[int, ...], key: str) -> np.ndarray:
        if weight.shape != shape:
            raise ModelError(f"{self.checkpoint}: {key} is {weight.shape}, expected {shape}")
        return weight

    def separable_block(self, x: int, index: int) -> int:
        channels = self.g.shape(x)[3]
        out, stride = _SEPARABLE[index]
        key = f"base_net.{index}"
        weight, bias = self.state.folded(f"{key}.0", f"{key}.1")
        self.expect(weight, (channels, 1, 3, 3), f"{key}.0")
        x = self.conv(x, weight, bias, stride, f"{key}/depthwise", depthwise=True)
        weight, bias = self.state.folded(f"{key}.3", f"{key}.4")
        self.expect(weight, (out, channels, 1, 1), f"{key}.3")
        return self.conv(x, weight, bias, 1, f"{key}/pointwise")

    def rfb_block(self, x: int, index: int) -> int:
        key = f"base_net.{index}"
        channels = self.g.shape(x)[3]
        branches = []
        for branch, layers in _RFB_BRANCHES.items():
            y = x
            for layer, dilation, relu in layers:
                name = f"{key}.{branch}.{layer}"
                weight, bias = self.state.folded(f"{name}.conv", f"{name}.bn")
                if weight.shape[1] != self.g.shape(y)[3]:
                    raise ModelError(f"{self.checkpoint}: {name}.conv takes {weight.shape[1]} "
                                     f"channels, the layer before gives {self.g.shape(y)[3]}")
                y = self.conv(y, weight, bias, 1, name.replace(".", "/"),
                         activation=RELU if relu else NONE, dilation=max(dilation, 1))
            branches.append(y)
        joined = self.g.concat(branches, 3, f"{key}/concat")
        weight, bias = self.state.folded(f"{key}.ConvLinear.conv", f"{key}.ConvLinear.bn")
        self.expect(weight, (channels, self.g.shape(joined)[3], 1, 1), f"{key}.ConvLinear.conv")
        linear = self.conv(joined, weight, bias, 1, f"{key}/linear", activation=NONE)
        weight, bias = self.state.folded(f"{key}.shortcut.conv", f"{key}.shortcut.bn")
        self.expect(weight, (channels, channels, 1, 1), f"{key}.shortcut.conv")
        shortcut = self.conv(x, weight, bias, 1, f"{key}/shortcut", activation=NONE)
        # upstream's scale is 1.0 for this block: out = linear + shortcut, then ReLU
        return self.g.add(linear, shortcut, f"{key}/out", RELU)

    def head(self, x: int, kind: str, level: int, values: int) -> int:
        key = f"{kind}_headers.{level}"
        channels = self.g.shape(x)[3]
        out = _ANCHORS[level] * values
        if level < 3:  # depthwise 3x3 + ReLU, pointwise 1x1
            weight, bias = self.state.biased(f"{key}.0")
            self.expect(weight, (channels, 1, 3, 3), f"{key}.0")
            y = self.conv(x, weight, bias, 1, f"{key}/depthwise", depthwise=True)
            weight, bias = self.state.biased(f"{key}.2")
            self.expect(weight, (out, channels, 1, 1), f"{key}.2")
            y = self.conv(y, weight, bias, 1, f"{key}/pointwise", activation=NONE)
        else:
            weight, bias = self.state.biased(key)
            self.expect(weight, (out, channels, 3, 3), key)
            y = self.conv(x, weight, bias, 1, f"{key}/conv", activation=NONE)
        return self.g.reshape(y, (1, -1, values), f"{key}/rows")


def convert(checkpoint: Path, description: str) -> bytes:
    """The detector as ``.tflite`` bytes (see module); ``description`` is stored in it."""
    state = Checkpoint(checkpoint, "the Ultra-Light RFB detector's checkpoint")
    g = Graph(description)
    width, height = WRITTEN_INPUT
    w = _Writer(g, state, checkpoint)
    x = g.tensor("input_rgb_normalised", (1, height, width, 3))
    g.inputs.append(x)

    weight, bias = state.folded("base_net.0.0", "base_net.0.1")
    w.expect(weight, (BASE, 3, 3, 3), "base_net.0.0")
    x = w.conv(x, weight, bias, 2, "base_net.0/conv")
    maps = []
    for index in range(1, 13):
        x = w.rfb_block(x, index) if index == 7 else w.separable_block(x, index)
        if index in _SOURCES:
            maps.append(x)
    # the extra layers: 1x1 + ReLU, then a separable stride-2 layer + ReLU
    weight, bias = state.biased("extras.0.0")
    w.expect(weight, (4 * BASE, 16 * BASE, 1, 1), "extras.0.0")
    x = w.conv(x, weight, bias, 1, "extras/reduce")
    weight, bias = state.biased("extras.0.2.0")
    w.expect(weight, (4 * BASE, 1, 3, 3), "extras.0.2.0")
    x = w.conv(x, weight, bias, 2, "extras/depthwise", depthwise=True)
    weight, bias = state.biased("extras.0.2.2")
    w.expect(weight, (16 * BASE, 4 * BASE, 1, 1), "extras.0.2.2")
    maps.append(w.conv(x, weight, bias, 1, "extras/pointwise"))

    boxes = [w.head(m, "regression", level, 4) for level, m in enumerate(maps)]
    logits = [w.head(m, "classification", level, 2) for level, m in enumerate(maps)]
    g.outputs.append(g.concat(boxes, 1, "regressions"))
    g.outputs.append(g.softmax(g.concat(logits, 1, "logits"), "scores"))
    return g.serialize()
