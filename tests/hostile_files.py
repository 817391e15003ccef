"""Small files that would take gigabytes if read naively, written without holding what
they expand to (tests/test_faults.py and scripts/probe_faults.py use them).

    big_png(path, width, height)      a valid all-black RGB PNG, e.g. 20000x20000 in ~1 MB
                                      (orientation=6: with an eXIf chunk turning it;
                                      grey16=True: 16-bit grey, as depth maps are)
    lying_jpeg(path, width, height)   a 96x80 JPEG whose header declares width x height
    many_frames_gif(path, n, side)    an animated GIF of n side x side frames, in ~n*side/8 B
    pickle_bomb_pth(path, n)          a zip checkpoint whose pickle inflates to n bytes
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


def big_png(path, width, height, orientation=None, grey16=False):
    """Writes a black PNG of width x height (8-bit RGB, or 16-bit grey), streaming its
    rows through zlib; with an eXIf chunk holding EXIF `orientation` when given."""
    depth, colour, sample = (16, 0, 2) if grey16 else (8, 2, 3)
    row = b"\x00" * (1 + sample * width)  # filter byte 0, then zeros
    rows_per_chunk = max(1, CHUNK // len(row))
    compressor = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour,
                                                0, 0, 0)))
        if orientation is not None:  # big-endian TIFF: one IFD0 entry, tag 0x0112 SHORT
            f.write(_png_chunk(b"eXIf", b"MM\x00*" + struct.pack(">IHHHIHHI", 8, 1, 0x0112,
                                                                 3, 1, orientation, 0, 0)))
        for start in range(0, height, rows_per_chunk):
            data = compressor.compress(row * min(rows_per_chunk, height - start))
            if data:
                f.write(_png_chunk(b"IDAT", data))
        f.write(_png_chunk(b"IDAT", compressor.flush()))
        f.write(_png_chunk(b"IEND", b""))


def lying_jpeg(path, width, height):
    """A 96x80 baseline JPEG (Pillow's) whose SOF0 header says width x height."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (96, 80), (120, 90, 60)).save(buffer, "JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")  # marker, length (2), precision (1), height, width
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    with open(path, "wb") as f:
        f.write(bytes(data))


def many_frames_gif(path, frames, side):
    """An animated GIF of `frames` frames of side x side pixels, each all colour 0 (one
    frame's LZW stream repeated: a few bytes per 64 pixels)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("P", (side, side), 0).save(buffer, "GIF")
    one = buffer.getvalue()
    start = 13 + (3 * 2 ** ((one[10] & 7) + 1) if one[10] & 0x80 else 0)
    while one[start] == 0x21:  # extensions before the image: label, then sub-blocks
        start += 2
        while one[start]:
            start += one[start] + 1
        start += 1
    assert one[start] == 0x2C and one[-1] == 0x3B
    with open(path, "wb") as f:
        f.write(one[:start].replace(b"GIF87a", b"GIF89a"))
        for _ in range(frames):
            f.write(one[start:-1])
        f.write(b"\x3b")


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


def pickle_bomb_pth(path, inflated):
    """A zip checkpoint whose data.pkl inflates to `inflated` bytes: one string of
    spaces (deflated ~1000 to 1), streamed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data.pkl", "w", force_zip64=inflated > 2 ** 31) as entry:
            length = inflated - 10
            entry.write(b"\x80\x02X" + struct.pack("<I", length))
            left = length
            while left > 0:
                entry.write(b" " * min(left, CHUNK))
                left -= CHUNK
            entry.write(b"q\x00.")
        archive.writestr("archive/version", "3\n")


def _zip_pth(path, pickled, storage=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        if storage is not None:
            archive.writestr("archive/data/0", storage)
        archive.writestr("archive/version", "3\n")
