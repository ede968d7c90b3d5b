"""Writing a small LiteRT (TFLite) model with numpy and the schema LiteRT ships.

``ai_edge_litert.schema_py_generated`` is the flatbuffer schema of the ``.tflite`` format
with its object API (``ModelT``, ``SubGraphT``, ``TensorT``, ``OperatorT`` ... ``Pack``):
enough to write a convolutional network without TensorFlow or a converter. :class:`Graph`
holds float32 tensors, constants and the handful of operators a MobileNet or an SSD
detector needs, and
:meth:`Graph.serialize` packs them in the order they were added, so the same weights always
give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
except ImportError as exc:  # pragma: no cover - the runtime dependency brings both
    raise ImportError("writing LiteRT models needs ai-edge-litert (pip install "
                      "ai-edge-litert)") from exc

SAME, VALID = schema.Padding.SAME, schema.Padding.VALID
RELU, NONE = schema.ActivationFunctionType.RELU, schema.ActivationFunctionType.NONE


@dataclass
class Graph:
    """One subgraph of float32 tensors; tensor ids are indices into ``tensors``."""

    description: str
    tensors: list[Any] = field(default_factory=list)
    buffers: list[Any] = field(default_factory=list)
    operators: list[Any] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.buffers.append(schema.BufferT())  # buffer 0: the empty one, by convention

    def tensor(self, name: str, shape: tuple[int, ...], data: np.ndarray | None = None,
               dtype: Any = np.float32) -> int:
        """A tensor (a constant if ``data`` is given); its id."""
        t = schema.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, dtype=np.int32)
        t.type = {np.dtype(np.float32): schema.TensorType.FLOAT32,
                  np.dtype(np.int32): schema.TensorType.INT32}[np.dtype(dtype)]
        t.buffer = 0
        if data is not None:
            array = np.array(data, dtype=dtype, order="C")  # (0-d stays 0-d)
            if array.shape != tuple(shape):
                raise ValueError(f"{name}: data of shape {array.shape}, tensor {shape}")
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(array.tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def shape(self, tensor: int) -> tuple[int, ...]:
        return tuple(int(v) for v in self.tensors[tensor].shape)

    def _op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
            options: Any = None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        op = schema.OperatorT()
        op.opcodeIndex = self.codes.index(code)
        op.inputs = np.array(inputs, dtype=np.int32)
        op.outputs = np.array(outputs, dtype=np.int32)
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        self.operators.append(op)

    # -------------------------------------------------------------------------- operators
    def scalar_op(self, kind: str, x: int, value: float, name: str) -> int:
        """``x - value`` (``sub``) or ``x * value`` (``mul``), elementwise."""
        constant = self.tensor(f"{name}/value", (), np.array(value, np.float32))
        out = self.tensor(name, self.shape(x))
        if kind == "sub":
            options = schema.SubOptionsT()
            options.fusedActivationFunction = NONE
            self._op(schema.BuiltinOperator.SUB, [x, constant], [out],
                     schema.BuiltinOptions.SubOptions, options)
        else:
            options = schema.MulOptionsT()
            options.fusedActivationFunction = NONE
            self._op(schema.BuiltinOperator.MUL, [x, constant], [out],
                     schema.BuiltinOptions.MulOptions, options)
        return out

    def pad(self, x: int, amount: int, name: str) -> int:
        """Zero padding of ``amount`` pixels on every side of an NHWC tensor."""
        paddings = self.tensor(f"{name}/paddings", (4, 2), np.array(
            [[0, 0], [amount, amount], [amount, amount], [0, 0]], np.int32), np.int32)
        n, h, w, c = self.shape(x)
        out = self.tensor(name, (n, h + 2 * amount, w + 2 * amount, c))
        self._op(schema.BuiltinOperator.PAD, [x, paddings], [out],
                 schema.BuiltinOptions.PadOptions, schema.PadOptionsT())
        return out

    def conv(self, x: int, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int,
             name: str, depthwise: bool = False, activation: int = RELU,
             dilation: int = 1) -> int:
        """Convolution of an NHWC tensor; ``weight`` in TFLite's layout (OHWI, or 1HWC for
        depthwise), fused activation, ``dilation`` (the kernel's taps that far apart)."""
        n, h, w, _ = self.shape(x)
        kh, kw = ((k - 1) * dilation + 1 for k in weight.shape[1:3])
        if padding == SAME:
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
        channels = weight.shape[3] if depthwise else weight.shape[0]
        wt = self.tensor(f"{name}/weight", weight.shape, weight)
        bt = self.tensor(f"{name}/bias", bias.shape, bias)
        out = self.tensor(name, (n, oh, ow, channels))
        if depthwise:
            options = schema.DepthwiseConv2DOptionsT()
            options.depthMultiplier = 1
            code, kind = (schema.BuiltinOperator.DEPTHWISE_CONV_2D,
                          schema.BuiltinOptions.DepthwiseConv2DOptions)
        else:
            options = schema.Conv2DOptionsT()
            code, kind = schema.BuiltinOperator.CONV_2D, schema.BuiltinOptions.Conv2DOptions
        options.padding = padding
        options.strideW = options.strideH = stride
        options.dilationWFactor = options.dilationHFactor = dilation
        options.fusedActivationFunction = activation
        self._op(code, [x, wt, bt], [out], kind, options)
        return out

    def add(self, a: int, b: int, name: str, activation: int = NONE) -> int:
        """``a + b`` (same shape), fused activation."""
        out = self.tensor(name, self.shape(a))
        options = schema.AddOptionsT()
        options.fusedActivationFunction = activation
        self._op(schema.BuiltinOperator.ADD, [a, b], [out], schema.BuiltinOptions.AddOptions,
                 options)
        return out

    def concat(self, parts: list[int], axis: int, name: str) -> int:
        """The tensors ``parts`` joined along ``axis``."""
        shape = list(self.shape(parts[0]))
        shape[axis] = sum(self.shape(p)[axis] for p in parts)
        out = self.tensor(name, tuple(shape))
        options = schema.ConcatenationOptionsT()
        options.axis = axis
        options.fusedActivationFunction = NONE
        self._op(schema.BuiltinOperator.CONCATENATION, parts, [out],
                 schema.BuiltinOptions.ConcatenationOptions, options)
        return out

    def reshape(self, x: int, shape: tuple[int, ...], name: str) -> int:
        """``x`` reshaped; one entry of ``shape`` may be -1 (what is left), which stays free
        when the input is resized at run time."""
        known = int(np.prod([v for v in shape if v != -1]))
        resolved = tuple(int(np.prod(self.shape(x))) // known if v == -1 else v for v in shape)
        target = self.tensor(f"{name}/shape", (len(shape),), np.array(shape, np.int32),
                             np.int32)
        out = self.tensor(name, resolved)
        options = schema.ReshapeOptionsT()
        options.newShape = list(shape)
        self._op(schema.BuiltinOperator.RESHAPE, [x, target], [out],
                 schema.BuiltinOptions.ReshapeOptions, options)
        return out

    def softmax(self, x: int, name: str) -> int:
        """Softmax over the last axis."""
        out = self.tensor(name, self.shape(x))
        options = schema.SoftmaxOptionsT()
        options.beta = 1.0
        self._op(schema.BuiltinOperator.SOFTMAX, [x], [out],
                 schema.BuiltinOptions.SoftmaxOptions, options)
        return out

    def spatial_mean(self, x: int, name: str) -> int:
        """Mean over height and width: (N, H, W, C) -> (N, C)."""
        axes = self.tensor(f"{name}/axes", (2,), np.array([1, 2], np.int32), np.int32)
        n, _, _, c = self.shape(x)
        out = self.tensor(name, (n, c))
        options = schema.ReducerOptionsT()
        options.keepDims = False
        self._op(schema.BuiltinOperator.MEAN, [x, axes], [out],
                 schema.BuiltinOptions.ReducerOptions, options)
        return out

    def dense(self, x: int, weight: np.ndarray, bias: np.ndarray, name: str) -> int:
        """Fully connected: (N, in) -> (N, out), ``weight`` (out, in)."""
        wt = self.tensor(f"{name}/weight", weight.shape, weight)
        bt = self.tensor(f"{name}/bias", bias.shape, bias)
        out = self.tensor(name, (self.shape(x)[0], weight.shape[0]))
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = NONE
        self._op(schema.BuiltinOperator.FULLY_CONNECTED, [x, wt, bt], [out],
                 schema.BuiltinOptions.FullyConnectedOptions, options)
        return out

    # ------------------------------------------------------------------------- serialise
    def serialize(self) -> bytes:
        """The ``.tflite`` bytes (deterministic)."""
        subgraph = schema.SubGraphT()
        subgraph.tensors = self.tensors
        subgraph.operators = self.operators
        subgraph.inputs = np.array(self.inputs, dtype=np.int32)
        subgraph.outputs = np.array(self.outputs, dtype=np.int32)
        subgraph.name = b"main"
        model = schema.ModelT()
        model.version = 3
        model.description = self.description.encode()
        model.buffers = self.buffers
        model.subgraphs = [subgraph]
        # a signature, as converters write one: tools (ai-edge-quantizer's calibration)
        # address the model's inputs and outputs by it
        signature = schema.SignatureDefT()
        signature.signatureKey = b"serving_default"
        signature.subgraphIndex = 0
        signature.inputs, signature.outputs = [], []
        for ids, maps in ((self.inputs, signature.inputs), (self.outputs, signature.outputs)):
            for tensor in ids:
                entry = schema.TensorMapT()
                entry.name = self.tensors[tensor].name
                entry.tensorIndex = tensor
                maps.append(entry)
        model.signatureDefs = [signature]
        model.operatorCodes = []
        for code in self.codes:
            opcode = schema.OperatorCodeT()
            opcode.builtinCode = code
            opcode.deprecatedBuiltinCode = min(code, 127)
            opcode.version = 1
            model.operatorCodes.append(opcode)
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
