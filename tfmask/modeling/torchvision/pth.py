"""Reading PyTorch ``.pth`` weight files without torch, and without running their code.

A ``.pth`` file is a pickle, and unpickling calls whatever the file names:
an unrestricted ``pickle.load`` (or ``torch.load`` without ``weights_only``)
of a hostile file runs arbitrary code. :func:`read_state_dict` unpickles with
a restricted :class:`pickle.Unpickler` that resolves only the names a saved
tensor dictionary needs, each to tfmask's own harmless stand-in:

* ``collections.OrderedDict`` (the state dict and its ``_metadata``);
* ``torch._utils._rebuild_tensor_v2`` and ``_rebuild_parameter`` (a tensor
  is a view of a storage: offset, size, stride);
* ``torch.<Type>Storage`` (the storage classes naming the element type).

Any other global (``os.system``, ``builtins.eval``, ``torch.nn.Module``...)
stops the load with ``DataError(path, ...)`` before anything is called.
Both formats torch writes are read: the zip archive (torch >= 1.6,
``ARCHIVE/data.pkl`` + ``ARCHIVE/data/KEY`` storages) and the legacy stream
(magic number, protocol, system info, the pickle, the storage keys, then
each storage as an int64 element count and its bytes), which torchvision's
2019 weights use.

Example::

    from tfmask.modeling.torchvision.pth import read_state_dict
    weights = read_state_dict("maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")
    weights["backbone.body.conv1.weight"].shape   # (64, 3, 7, 7) float32 numpy
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, Tuple

import numpy as np

from tfmask.errors import DataError, PathLike

# torch storage class name -> numpy dtype (little-endian, as torch writes them).
STORAGE_DTYPES: Dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"), "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: only names the dtype."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


class _Storage:
    """A storage's element type and flat contents (filled in later for legacy files)."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray = None  # type: ignore[assignment]


@dataclass
class _TensorRef:
    """A tensor as pickled: a strided view of a storage, materialized after loading."""

    storage: _Storage
    offset: int
    size: Tuple[int, ...]
    stride: Tuple[int, ...]


class _SafeOrderedDict(collections.OrderedDict):
    """OrderedDict that takes the ``_metadata`` attribute torch sets, and nothing callable."""


def _is_int_tuple(value) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest) -> _TensorRef:
    if not isinstance(storage, _Storage) or not _is_int_tuple(tuple(size)) or \
            not _is_int_tuple(tuple(stride)) or len(size) != len(stride) or \
            not isinstance(storage_offset, int) or storage_offset < 0:
        raise pickle.UnpicklingError("malformed tensor record")
    size, stride = tuple(size), tuple(stride)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) \
        else storage_offset - 1
    if last >= storage.numel:
        raise pickle.UnpicklingError(f"tensor of size {list(size)} reaches past its storage "
                                     f"of {storage.numel} elements")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_rest):
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError("malformed parameter record")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): _SafeOrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something a tensor file never needs."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` names; storages come from ``storages``."""

    def __init__(self, file: BinaryIO, storage_for):
        super().__init__(file)
        self._storage_for = storage_for

    def find_class(self, module: str, name: str):
        # Protocol 2 writes Python 2 names (__builtin__.eval): map them as pickle does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"it calls {module}.{name}, which a tensor file never needs (only "
                           "tensors, storages and OrderedDict are accepted)") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise _Refused(f"unexpected persistent id {pid!r:.80}")
        return self._storage_for(str(pid[2]), pid[1].dtype, pid[4])


def _materialize(obj: Any, path: str) -> Any:
    """Replaces every _TensorRef in nested dicts/lists with a numpy array."""
    if isinstance(obj, _TensorRef):
        st = obj.storage
        if st.data is None or st.data.size < st.numel:
            raise DataError(path, "a tensor's storage is missing or truncated")
        item = st.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            st.data[obj.offset:], shape=obj.size, strides=[s * item for s in obj.stride],
            writeable=False)
        return np.array(view, dtype=st.dtype.newbyteorder("="))
    if isinstance(obj, dict):
        return {k: _materialize(v, path) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, path) for v in obj)
    return obj


def _read_zip(path: str, zf: zipfile.ZipFile) -> Any:
    names = zf.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise DataError(path, "not a PyTorch zip checkpoint (no ARCHIVE/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    order = zf.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names \
        else "little"
    if order not in ("little", "big"):
        raise DataError(path, f"unknown byte order {order!r}")
    storages: Dict[str, _Storage] = {}

    def storage_for(key: str, dtype: np.dtype, numel: int) -> _Storage:
        if key not in storages:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise pickle.UnpicklingError(f"storage {key} is missing from the archive")
            raw = zf.read(member)
            file_dtype = dtype.newbyteorder("<" if order == "little" else ">")
            if len(raw) < numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key} is truncated")
            st = _Storage(dtype, numel)
            st.data = np.frombuffer(raw, file_dtype, count=numel)
            storages[key] = st
        return storages[key]

    with zf.open(pickles[0]) as f:
        return _RestrictedUnpickler(io.BufferedReader(f), storage_for).load()


def _read_legacy(path: str, f: BinaryIO) -> Any:
    def header(expected, what):
        value = _RestrictedUnpickler(f, _no_storage).load()
        if expected is not None and value != expected:
            raise DataError(path, f"not a PyTorch checkpoint (bad {what})")
        return value

    header(_LEGACY_MAGIC, "magic number")
    header(_LEGACY_PROTOCOL, "protocol version")
    info = header(None, "system info")
    if not isinstance(info, dict) or not info.get("little_endian", True):
        raise DataError(path, "big-endian legacy checkpoints are not supported")
    storages: Dict[str, _Storage] = {}

    def storage_for(key: str, dtype: np.dtype, numel: int) -> _Storage:
        return storages.setdefault(key, _Storage(dtype, numel))

    result = _RestrictedUnpickler(f, storage_for).load()
    keys = _RestrictedUnpickler(f, _no_storage).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise DataError(path, "the storage list does not match the tensors")
    for key in keys:
        st = storages[str(key)]
        count = f.read(8)
        if len(count) != 8:
            raise DataError(path, "truncated file (a storage is missing)")
        (numel,) = struct.unpack("<q", count)
        if numel != st.numel:
            raise DataError(path, f"storage {key} holds {numel} elements, expected {st.numel}")
        raw = f.read(numel * st.dtype.itemsize)
        if len(raw) != numel * st.dtype.itemsize:
            raise DataError(path, "truncated file (a storage is cut short)")
        st.data = np.frombuffer(raw, st.dtype, count=numel)
    return result


def _no_storage(key, dtype, numel):
    raise pickle.UnpicklingError("a storage outside the tensor pickle")


def read_pth(path: PathLike) -> Any:
    """Loads a ``.pth`` file safely; tensors become numpy arrays, containers stay.

    Raises:
      DataError: the file is missing, is not a PyTorch checkpoint, is truncated,
        or its pickle names anything but tensors, storages and OrderedDict.
    """
    path = str(path)
    if not Path(path).is_file():
        raise DataError(path, "file not found")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                obj = _read_zip(path, zf)
        else:
            with open(path, "rb") as f:
                obj = _read_legacy(path, f)
    except _Refused as exc:
        raise DataError(path, f"refused: {exc}", kind="unsafe_pickle") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, struct.error, zipfile.BadZipFile, UnicodeDecodeError,
            MemoryError) as exc:
        raise DataError(path, f"not a readable PyTorch checkpoint ({type(exc).__name__}: "
                        f"{str(exc)[:120]})") from None
    return _materialize(obj, path)


def read_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """A ``state_dict`` from a ``.pth``: name -> array.

    Accepts a saved state dict, or a training checkpoint holding one under
    ``"model"`` or ``"state_dict"`` (torchvision's reference scripts save
    ``{"model": ..., "optimizer": ...}``).

    Raises:
      DataError: as :func:`read_pth`, or the file holds no tensor dictionary.
    """
    obj = read_pth(path)
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
        raise DataError(path, "holds no state dict (a dictionary of tensor names to tensors)")
    return dict(obj)
