"""Reads PyTorch `.pth` files with the standard library and numpy: no torch, no code run.

    state = load("checkpoint030.pth")      # {"netD": {"network.0.weight": ndarray, ...}, ...}

Both formats `torch.save` writes:
- zip (PyTorch >= 1.6): an archive with `<dir>/data.pkl`, a pickle whose tensors point
  at storages by key, and one raw file `<dir>/data/<key>` per storage.
- legacy (PyTorch <= 1.5, the default of PyTorch 1.2 that the authors' code names): one
  stream of pickles: a magic number, a protocol version, a system-info dict, the object
  (tensors again point at storages by key), the sorted list of storage keys, then each
  storage as an int64 element count followed by its raw bytes.

A `.pth` is a pickle, and unpickling can run any function the file names. This reader's
unpickler rebuilds only dicts, lists, tuples, numbers, strings, `collections.OrderedDict`
and tensors; every other global the file names (the authors' `MetricsTrace` class, or a
hostile `os.system`) becomes an `Inert` placeholder that records the name and arguments
and does nothing, so nothing from the file is ever called.

Tensors come back as numpy arrays (C-contiguous copies) in their storage's dtype.
"""

import collections
import io
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype ('bfloat16' is read as uint16 and widened).
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}
# The largest storage, tensor or zip entry the reader allocates, in bytes (the authors'
# models are ~50 MB): a file declaring more is refused before anything is allocated.
MAX_BYTES = 2 ** 31
# A checkpoint's pickle is a few kB to a few MB, with a few hundred values nested a few
# levels deep; beyond these a file is refused before (size) or while (nodes, depth) it
# is walked.
MAX_PICKLE_BYTES = 64 * 2 ** 20
MAX_NODES = 1_000_000
MAX_DEPTH = 100
_REBUILDERS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3",
               "_rebuild_parameter")


class TorchFileError(ValueError):
    """A file that is not a readable PyTorch checkpoint; the message names the file."""


class Inert:
    """Stands for an object of a class the reader does not rebuild.

    Attributes: `name` ("module.Class" as the file names it), `args` (what the file passed
    to it) and `state` (what it set on it); none of it is interpreted."""

    name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items = args, kwargs, None, []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.items.append(item)

    def extend(self, items):
        self.items.extend(items)

    def __setitem__(self, key, value):
        self.items.append((key, value))

    def __repr__(self):
        return f"<inert {self.name}>"


def _inert_class(module, name):
    return type(name, (Inert,), {"name": f"{module}.{name}"})


class _Storage:
    """A storage the pickle refers to; `array` (1-D) is filled when its bytes are read."""

    def __init__(self, type_name, numel):
        if type_name not in STORAGE_DTYPES:
            raise TorchFileError(f"unsupported storage type {type_name}")
        self.type_name, self.numel, self.array = type_name, int(numel), None
        if self.numel < 0 or self.numel * self.raw_dtype.itemsize > MAX_BYTES:
            raise TorchFileError(f"a {type_name} declaring {self.numel:,} elements, over "
                                 f"the limit of {MAX_BYTES:,} bytes")

    @property
    def raw_dtype(self):
        """The dtype of the stored bytes (bfloat16 is stored as uint16)."""
        kind = STORAGE_DTYPES[self.type_name]
        return np.dtype(np.uint16 if kind == "bfloat16" else kind)

    def fill(self, raw, byteorder="little"):
        kind = STORAGE_DTYPES[self.type_name]
        dtype = self.raw_dtype
        if byteorder == "big":
            dtype = dtype.newbyteorder(">")
        if len(raw) < self.numel * dtype.itemsize:
            raise TorchFileError(f"a {self.type_name} of {self.numel} elements has only "
                                 f"{len(raw)} bytes (truncated file?)")
        array = np.frombuffer(raw, dtype, self.numel).astype(dtype.newbyteorder("="))
        if kind == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        self.array = array


class _TensorRef:
    """A tensor the pickle rebuilt: a strided view of a storage, made an array later."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise TorchFileError("a tensor whose storage is not a storage record")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def to_numpy(self):
        data = self.storage.array
        if data is None:
            raise TorchFileError("a tensor refers to a storage the file does not hold")
        if any(s == 0 for s in self.size):
            return np.zeros(self.size, data.dtype)
        nbytes = int(np.prod(self.size, dtype=np.float64)) * data.itemsize
        if nbytes > MAX_BYTES:  # e.g. a stride-0 view of a small storage, blown up
            raise TorchFileError(f"a tensor of shape {self.size} would take {nbytes:,} "
                                 f"bytes, over the limit of {MAX_BYTES:,}")
        last = self.offset + sum((n - 1) * st for n, st in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= data.size:
            raise TorchFileError(f"a tensor of shape {self.size} reaches past its storage "
                                 f"of {data.size} elements")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], self.size, [st * data.itemsize for st in self.stride],
            writeable=False)
        return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *rest):
    return data


class _Unpickler(pickle.Unpickler):
    """Rebuilds containers and tensors only (see the module docstring)."""

    def __init__(self, file, storages, read_storage=None):
        super().__init__(file, encoding="latin1")
        self.storages, self.read_storage = storages, read_storage

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in _REBUILDERS:
            return _rebuild_parameter if name == "_rebuild_parameter" else _rebuild_tensor
        # Anything else, storage types included (they are only named in storage
        # records), becomes an inert class.
        return _inert_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        type_name = getattr(storage_type, "__name__", str(storage_type))
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(type_name, numel)
            if self.read_storage is not None:
                self.read_storage(key, self.storages[key])
        storage = self.storages[key]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # legacy: (view key, element offset, view size)
            _view_key, offset, size = view
            return _View(storage, int(offset), int(size))
        return storage


class _View(_Storage):
    """A legacy storage view: elements offset .. offset + size of another storage."""

    def __init__(self, base, offset, size):
        self.base, self.view_offset, self.numel = base, offset, size
        self.type_name = base.type_name

    @property
    def array(self):
        if self.base.array is None:
            return None
        return self.base.array[self.view_offset:self.view_offset + self.numel]


def _materialise(obj, depth=0, count=None):
    """Replaces tensor references by numpy arrays throughout containers. A pickle can
    share one container many times over (each level doubling what a walk visits) or
    nest thousands deep in a few hundred bytes: more than MAX_NODES containers and
    values, or nesting over MAX_DEPTH, is refused."""
    count = count if count is not None else [0]
    count[0] += 1
    if count[0] > MAX_NODES:
        raise TorchFileError(f"holds over {MAX_NODES:,} values (a checkpoint has a few "
                             "hundred): not a checkpoint")
    if depth > MAX_DEPTH:
        raise TorchFileError(f"nested over {MAX_DEPTH} levels deep: not a checkpoint")

    def walk(v):
        return _materialise(v, depth + 1, count)

    if isinstance(obj, _TensorRef):
        return obj.to_numpy()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, walk(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: walk(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [walk(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(walk(v) for v in obj)
    return obj


def _load_zip(path, archive):
    names = archive.namelist()
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise TorchFileError(f"{path}: a zip file without one <dir>/data.pkl: not a "
                             "PyTorch checkpoint")
    prefix = pkl[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = archive.read(prefix + "byteorder").decode().strip()

    def read_storage(key, storage):
        name = f"{prefix}data/{key}"
        try:
            size = archive.getinfo(name).file_size
        except KeyError as err:
            raise TorchFileError(f"storage {key} is missing from the archive") from err
        if size > storage.numel * storage.raw_dtype.itemsize + 64:
            # An entry larger than its storage needs (a zip bomb inflates to gigabytes).
            raise TorchFileError(f"storage {key}: its zip entry unpacks to {size:,} bytes, "
                                 f"more than its {storage.numel:,} elements need")
        raw = archive.read(name)
        storage.fill(raw, byteorder)

    size = archive.getinfo(pkl[0]).file_size
    if size > MAX_PICKLE_BYTES:  # checked before inflating it
        raise TorchFileError(f"its {pkl[0]} unpacks to {size:,} bytes, over the limit of "
                             f"{MAX_PICKLE_BYTES:,}: not a checkpoint")
    return _Unpickler(io.BytesIO(archive.read(pkl[0])), {}, read_storage).load()


def _load_legacy(path, f):
    magic = _Unpickler(f, {}).load()
    if magic != LEGACY_MAGIC:
        raise TorchFileError(f"{path}: not a PyTorch checkpoint (no zip archive, no "
                             "legacy magic number)")
    protocol = _Unpickler(f, {}).load()
    if protocol != LEGACY_PROTOCOL:
        raise TorchFileError(f"{path}: unsupported legacy protocol version {protocol!r}")
    sys_info = _Unpickler(f, {}).load()
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
    storages = {}
    obj = _Unpickler(f, storages).load()
    keys = _Unpickler(f, {}).load()
    if not isinstance(keys, list):
        raise TorchFileError(f"{path}: the storage key list is not a list")
    for key in keys:
        key = str(key)
        head = f.read(8)
        if len(head) < 8:
            raise TorchFileError(f"{path}: truncated before storage {key}")
        numel = struct.unpack("<q" if little else ">q", head)[0]
        storage = storages.get(key)
        if storage is None:
            raise TorchFileError(f"{path}: storage {key} is listed but never used")
        raw = f.read(numel * storage.raw_dtype.itemsize)
        storage.numel = numel
        storage.fill(raw, "little" if little else "big")
    return obj


def _starts_as_zip(path):
    """Whether the file begins with a zip entry header (PyTorch >= 1.6's format)."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load(path):
    """Reads a `.pth` file (zip or legacy format) without torch and without running code.

    Args:
      path: the file.

    Returns:
      What the file holds, with tensors as numpy arrays, OrderedDicts and dicts as such,
      and objects of other classes as `Inert` placeholders.

    Raises:
      FileNotFoundError naming the path; TorchFileError (a ValueError) naming the path and
      the problem for a file that is not a readable PyTorch checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                obj = _load_zip(path, archive)
        elif _starts_as_zip(path):
            raise TorchFileError(f"{path}: a zip archive without its end (its central "
                                 "directory is missing): the file was cut short; copy it "
                                 "again")
        elif tarfile.is_tarfile(path):
            raise TorchFileError(f"{path}: a tar-format checkpoint (PyTorch < 0.4) is not "
                                 "supported; re-save it with a newer PyTorch")
        else:
            with open(path, "rb") as f:
                obj = _load_legacy(path, f)
        return _materialise(obj)
    except TorchFileError as err:
        message = str(err)
        raise TorchFileError(message if message.startswith(path) else f"{path}: {message}") \
            from None
    except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile,
            ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError,
            RecursionError) as err:
        raise TorchFileError(f"{path}: not a readable PyTorch checkpoint "
                             f"({type(err).__name__}: {err})") from None
