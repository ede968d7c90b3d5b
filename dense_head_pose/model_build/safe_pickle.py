"""Reading the pickles upstream model files come in, without running their code.

A pickle names callables that the loader calls: ``pickle.load`` on a file from the internet
runs whatever it names. The upstream files this project builds from are pickles (3DDFA_V2's
``param_mean_std_62d_120x120.pkl`` and ``tri.pkl``, its PyTorch checkpoint
``mb05_120x120.pth``, a user's ``bfm_noneck_v3.pkl``), so every one is read here by an
unpickler that admits a fixed list of names and builds the rest itself:

* :class:`NumpyUnpickler`: numpy arrays, dtypes and plain containers, nothing else;
* :func:`load_torch_checkpoint`: PyTorch's legacy serialisation (``torch.save`` before 1.6
  and with ``_use_new_zipfile_serialization=False``): a magic number, the protocol version,
  system information, the pickled object whose tensors refer to storages by persistent id,
  the list of storage keys, then each storage's raw bytes. Only ``OrderedDict``,
  ``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types are admitted, and
  each becomes a numpy stand-in: no torch is imported, no code in the file runs. Sizes,
  strides and offsets are checked against the bytes the file holds.

Anything else is refused with :class:`~dense_head_pose.errors.ModelError` naming the file
and what it tried to load.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ModelError

MAX_PICKLE_BYTES = 1 << 30
TORCH_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class NumpyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes and plain containers; refuses every other global."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing pickled global {module}.{name}")


def _read_bounded(path: Path, limit: int) -> bytes:
    try:
        if not path.is_file():
            raise ModelError(f"{path} is not a regular file")
        size = path.stat().st_size
        if size > limit:
            raise ModelError(f"{path} is {size} bytes, more than the {limit} allowed")
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from exc


_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError,
                IndexError, KeyError, MemoryError, RecursionError, struct.error, OverflowError)


def load_numpy_pickle(path: Path, limit: int = MAX_PICKLE_BYTES) -> Any:
    """The object of a pickle of numpy arrays (dicts, lists, arrays), read safely."""
    data = _read_bounded(path, limit)
    try:
        return NumpyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: not a pickle of numpy arrays ({exc!r})") from exc


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: type
    size: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co. in the pickle."""

    def __init__(self, name: str) -> None:
        self.name = name


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *_: Any
                       ) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and len(size) <= 8
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
        raise pickle.UnpicklingError("tensor offset, size or stride is not a list of "
                                     "non-negative integers")
    return _TensorRef(storage, offset, size, stride)


class _CheckpointUnpickler(pickle.Unpickler):
    """The main pickle of a legacy PyTorch checkpoint (see module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in {("torch._utils", "_rebuild_tensor_v2"),
                              ("torch._utils", "_rebuild_tensor")}:
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing pickled global {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and 0 <= pid[4] < 1 << 34):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.100}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        storage = _Storage(pid[2], _STORAGE_DTYPES[pid[1].name], pid[4])
        if self.storages.setdefault(storage.key, storage) != storage:
            raise pickle.UnpicklingError(f"storage {storage.key} declared twice, differently")
        return storage


class _PlainUnpickler(pickle.Unpickler):
    """Small header pickles (magic, version, system info, storage keys): no globals."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refusing pickled global {module}.{name}")


def load_torch_checkpoint(path: Path, limit: int = MAX_PICKLE_BYTES) -> dict[str, Any]:
    """The object of a legacy-format PyTorch checkpoint, its tensors as numpy arrays, read
    without torch and without running any code in the file."""
    data = _read_bounded(path, limit)
    try:
        return _load_checkpoint(io.BytesIO(data))
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({exc!r:.300})") from exc


def _load_checkpoint(stream: io.BytesIO) -> Any:
    total = len(stream.getbuffer())

    def header() -> Any:
        return _PlainUnpickler(stream).load()

    if header() != TORCH_MAGIC:
        raise pickle.UnpicklingError("no PyTorch magic number (a zip checkpoint of torch >= "
                                     "1.6 is not this format)")
    if header() != TORCH_PROTOCOL:
        raise pickle.UnpicklingError("unknown PyTorch serialisation protocol")
    info = header()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise pickle.UnpicklingError("not a little-endian checkpoint")
    unpickler = _CheckpointUnpickler(stream, encoding="latin1")
    root = unpickler.load()
    keys = header()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise pickle.UnpicklingError("storage keys are not a list of strings")
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        declared = unpickler.storages.get(key)
        if declared is None:
            raise pickle.UnpicklingError(f"storage {key} is used by no tensor")
        (count,) = struct.unpack("<q", stream.read(8))
        itemsize = np.dtype(declared.dtype).itemsize
        start = stream.tell()
        if count != declared.size or start + count * itemsize > total:
            raise pickle.UnpicklingError(f"storage {key} holds {count} elements, its tensors "
                                         f"say {declared.size}, or it runs past the end")
        storages[key] = np.frombuffer(stream.getbuffer(), declared.dtype, count=count,
                                      offset=start)
        stream.seek(start + count * itemsize)
    if stream.tell() != total:
        raise pickle.UnpicklingError(f"{total - stream.tell()} bytes after the last storage")
    return _resolve(root, storages)


def _resolve(obj: Any, storages: dict[str, np.ndarray]) -> Any:
    """Replace tensor references by numpy arrays; containers recursively."""
    if isinstance(obj, _TensorRef):
        return _tensor(obj, storages)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _resolve(v, storages)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _resolve(v, storages) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, storages) for v in obj)
    if isinstance(obj, (_Storage, _StorageType)):
        raise pickle.UnpicklingError("a bare storage outside a tensor")
    return obj


def _tensor(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages.get(ref.storage.key)
    if flat is None:
        raise pickle.UnpicklingError(f"storage {ref.storage.key} is not in the file")
    if any(n == 0 for n in ref.shape):
        return np.zeros(ref.shape, ref.storage.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
    if last >= flat.size:
        raise pickle.UnpicklingError(f"a tensor reaches past its storage {ref.storage.key}")
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset:], shape=ref.shape,
        strides=tuple(s * itemsize for s in ref.stride), writeable=False)
    return np.array(view)
