"""Small files that would take gigabytes if read naively, written without holding what
they expand to (tests/test_faults.py and scripts/probe_faults.py use them).

    big_png(path, width, height)      a valid all-black RGB PNG, e.g. 20000x20000 in ~1 MB
    zip_bomb_pth(path, source, n)     a PyTorch zip checkpoint whose first storage entry
                                      inflates by n zero bytes
    stride_zero_pth(path)             a PyTorch zip checkpoint whose one tensor is a
                                      (2000, 1000000) view of a 4-float storage
                                      (strides 0: 8 GB as an array)
"""

import struct
import zipfile
import zlib

CHUNK = 1 << 22


def _png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def big_png(path, width, height):
    """Writes a black 8-bit RGB PNG of width x height, streaming its rows through zlib."""
    row = b"\x00" * (1 + 3 * width)  # filter byte 0, then RGB zeros
    rows_per_chunk = max(1, CHUNK // len(row))
    compressor = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for start in range(0, height, rows_per_chunk):
            data = compressor.compress(row * min(rows_per_chunk, height - start))
            if data:
                f.write(_png_chunk(b"IDAT", data))
        f.write(_png_chunk(b"IDAT", compressor.flush()))
        f.write(_png_chunk(b"IEND", b""))


def zip_bomb_pth(path, source, extra_bytes):
    """Copies the zip checkpoint `source` to `path`, its first storage entry followed by
    extra_bytes zero bytes (deflated: ~1000 to 1)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        storages = [n for n in src.namelist() if "/data/" in n]
        for name in src.namelist():
            data = src.read(name)
            if name != storages[0]:
                dst.writestr(name, data)
                continue
            with dst.open(name, "w", force_zip64=extra_bytes > 2 ** 31) as entry:
                entry.write(data)
                zeros = bytes(CHUNK)
                left = extra_bytes
                while left > 0:
                    entry.write(zeros[:min(left, CHUNK)])
                    left -= CHUNK


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(s):
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(n):
    return b"J" + struct.pack("<i", n)


def stride_zero_pth(path, shape=(2000, 1000000)):
    """A PyTorch zip checkpoint {"netD": OrderedDict(w=T)} where T is
    torch._utils._rebuild_tensor_v2 of a 4-float storage with `shape` and strides 0,
    written opcode by opcode (pickle protocol 2, as torch.save writes it)."""
    declared_pth(path, {"netD": {"w": shape}})


def declared_pth(path, nets):
    """A PyTorch zip checkpoint {net: OrderedDict(key: T)} for nets {net: {key: shape}},
    each T a stride-0 view of one 4-float storage: any shapes, in a few hundred bytes."""
    ordered_dict = _global("collections", "OrderedDict") + b")R"  # OrderedDict()
    storage_id = (b"(" + _text("storage") + _global("torch", "FloatStorage") + _text("0")
                  + _text("cpu") + _int(4) + b"tQ")  # a tuple, then BINPERSID

    def tensor(shape):
        return (_global("torch._utils", "_rebuild_tensor_v2") + b"(" + storage_id + _int(0)
                + b"(" + b"".join(_int(n) for n in shape) + b"t"
                + b"(" + b"".join(_int(0) for _ in shape) + b"t"
                + b"\x89" + ordered_dict + b"tR")  # requires_grad False, hooks, call

    body = b"".join(_text(net) + ordered_dict
                    + b"".join(_text(k) + tensor(shape) + b"s" for k, shape in keys.items())
                    + b"s" for net, keys in nets.items())
    _zip_pth(path, b"\x80\x02}" + body + b".", struct.pack("<4f", 1, 2, 3, 4))


def nested_pth(path, depth=100_000):
    """A zip checkpoint whose pickle is a list nested `depth` deep (~2 bytes a level)."""
    _zip_pth(path, b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")


def shared_pth(path, levels=40):
    """A zip checkpoint whose pickle is a list holding one list twice, `levels` times
    over: a few hundred bytes, 2 ** levels values when walked as a tree."""
    pickled = b"\x80\x02]"  # x = []; then `levels` times x = [x, x]
    for _ in range(levels):
        pickled += b"q\x00(h\x00h\x00l"  # BINPUT 0; MARK; BINGET 0 twice; LIST
    _zip_pth(path, pickled + b".")


def _zip_pth(path, pickled, storage=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        if storage is not None:
            archive.writestr("archive/data/0", storage)
        archive.writestr("archive/version", "3\n")
