"""The one way a photo becomes a model input: read, crop, resize.

Training, evaluation, reconstruction, int8 calibration and the serving graph all call
these functions, so a photo gives the same input tensor (float32 [S, S, 3] in [0, 1],
RGB) whichever of them it comes in by:

  read(path)            a file, with Pillow: EXIF orientation applied; grey, palette,
                        RGBA (alpha dropped), 16-bit grey (full precision) -> RGB [0, 1]
  read_samples(path)    the same before the floats (uint8, or uint16 grey): crop first,
                        then to_float, for a quarter of the memory
  decode(data)          the same for encoded bytes, in TensorFlow ops (the serving
                        graph): JPEG (libjpeg's accurate integer DCT, as Pillow), PNG,
                        BMP, GIF (first frame); EXIF orientation read from the bytes
  crop(image, box)      a box (x0, y0, w, h) in pixels; outside the photo the border
                        pixels are replicated (as the authors' CelebA crops)
  centre_box(h, w)      the centred square, the default crop
  cropped(image, crop)  the config's crop (crop_box) applied (crop_tensor: the same in
                        TensorFlow ops, for the serving graph)
  resize(image, size)   bilinear with antialiasing (a triangle filter widened by the
                        scale when shrinking): Pillow's BILINEAR, within float precision
                        of its float mode and 1/255 of its 8-bit mode
  prepare(image, size, crop)  crop + resize; `crop` is the config's: None (centre
                        square), an int (centre square of that side) or [x0, y0, w, h]
  load(path, size, crop)      read + prepare

Pillow reads 16-bit colour PNGs at 8 bits (it keeps the high byte); decode does the same,
so both doors agree on them too.
"""

import os
import re
import warnings

import numpy as np

# Files every reader takes (Pillow); decode takes the first four formats.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
EXIF_SEARCH_BYTES = 1 << 16  # EXIF sits in the first APP1 segment (at most 64 KiB)
EXIF_MAX_ENTRIES = 64        # IFD0 entries searched for the orientation tag
# The most pixels a photo may have (width x height, as its header declares them), at
# every door that decodes one: larger ones are refused before decoding (a 1 MB PNG can
# declare 20000 x 20000 pixels, 4.8 GB as float32). TFSYM3D_MAX_PIXELS overrides it; the
# phone page has the same limit (mobile_demo/web/image.js).
MAX_PIXELS = int(float(os.environ.get("TFSYM3D_MAX_PIXELS", 50e6)))


class InputError(ValueError):
    """An image that cannot be used (the message is the one-line reason)."""


def open_image(path):
    """PIL's Image.open under this module's pixel limit instead of PIL's: PIL's warning
    over 89e6 pixels is silenced, its refusal over twice that is said as ours, and its
    limit is raised to ours where TFSYM3D_MAX_PIXELS is larger."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # TFSYM3D_MAX_PIXELS raised above PIL's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError as err:
            found = re.search(r"\((\d+) pixels\)", str(err))
            pixels = f"{int(found.group(1)):,} pixels" if found else "its size"
            raise InputError(f"{pixels}, over the limit of {MAX_PIXELS:,} "
                             "(TFSYM3D_MAX_PIXELS)") from err


def check_pixels(width, height, what=""):
    """InputError when width x height (a header's) is over MAX_PIXELS; `what` names the
    kind of image in the message ("depth map ")."""
    if width * height > MAX_PIXELS:
        raise InputError(f"{what}{width}x{height} is {width * height:,} pixels, over the "
                         f"limit of {MAX_PIXELS:,} (TFSYM3D_MAX_PIXELS)")


def read_samples(path):
    """Reads an image file (a path or a file object) as its stored samples, EXIF
    orientation applied, not yet in floats: uint8 [H, W, 3] (grey, palette and RGBA made
    RGB, alpha dropped), or uint16 [H, W, 1] for 16-bit grey. A quarter of read()'s
    memory (a sixth for 16-bit grey): crop first, then to_float.

    Raises InputError with a one-line reason when it cannot be read."""
    from PIL import Image

    if isinstance(path, str | os.PathLike) and os.path.isfile(path) \
            and os.path.getsize(path) == 0:
        raise InputError("empty file")
    try:
        with open_image(path) as im:
            w, h = im.size
            check_pixels(w, h)
            if im.format == "JPEG":
                _check_jpeg_size(w, h, _byte_size(path))
            orientation = im.getexif().get(0x0112, 1)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im)
                arr = np.clip(arr, 0, 65535).astype(np.uint16)[..., None] \
                    if arr.dtype != np.uint16 else arr[..., None]
            else:
                arr = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        reason = str(err).splitlines()[0] if str(err) else "unknown"
        raise InputError(f"not a readable image ({type(err).__name__}: {reason})") from err
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"image too small ({arr.shape[1]}x{arr.shape[0]})")
    return oriented(arr, orientation)


def read(path):
    """Reads an image file (a path or a file object): float32 [H, W, 3] in [0, 1]
    (read_samples, then to_float).

    Raises InputError with a one-line reason when it cannot be read."""
    return to_float(read_samples(path))


def to_float(samples):
    """Stored samples (read_samples: uint8 [h, w, 3] or uint16 [h, w, 1]) -> float32
    [h, w, 3] in [0, 1]; float images pass through as float32."""
    if samples.dtype == np.uint8:  # one float array, no temporaries
        return np.divide(samples, np.float32(255.0), out=np.empty(samples.shape, np.float32))
    if samples.dtype == np.uint16:
        out = np.empty(samples.shape[:2] + (3,), np.float32)
        np.divide(samples, np.float32(65535.0), out=out[..., :1])
        out[..., 1:] = out[..., :1]
        return out
    return np.asarray(samples, np.float32)


# The most pixels a baseline or progressive (Huffman-coded) JPEG can describe per byte
# is 512: each 8x8 block of its first component costs at least one bit. A header that
# declares more than 8 times that for the file's size lies (the decoder would allocate
# the declared size and fill it with grey).
JPEG_MAX_PIXELS_PER_BYTE = 4096


def _byte_size(source):
    """The size in bytes of a path or a seekable file object."""
    if isinstance(source, str | os.PathLike):
        return os.path.getsize(source)
    at = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(at)
    return size


def _check_jpeg_size(width, height, size):
    if width * height > JPEG_MAX_PIXELS_PER_BYTE * size:
        raise InputError(f"corrupt JPEG: its header declares {width}x{height} pixels, more "
                         f"than its {size:,} bytes can hold")


def oriented(image, orientation):
    """Applies an EXIF orientation (1-8; anything else is 1) to [H, W, C] as Pillow's
    ImageOps.exif_transpose does, as numpy views (no copy); orient() in TensorFlow."""
    if orientation in (5, 6, 7, 8):
        image = image.transpose(1, 0, 2)
    flips = {2: (1,), 3: (0, 1), 4: (0,), 6: (1,), 7: (0, 1), 8: (0,)}
    for axis in flips.get(orientation, ()):
        image = np.flip(image, axis)
    return image


def to_unit(x):
    """The networks' range [-1, 1] -> [0, 1] (images in and out of the model are in
    [0, 1]; inside it they are in [-1, 1]). numpy arrays or tensors."""
    return x / 2.0 + 0.5


def from_unit(x):
    """[0, 1] -> the networks' range [-1, 1]; the inverse of to_unit."""
    return x * 2.0 - 1.0


def to_uint8(image):
    """[..., 3] in [0, 1] -> uint8, rounded (values outside [0, 1] clipped)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def centre_box(height, width):
    """The centred square (x0, y0, side, side) of an image, in whole pixels."""
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


def crop_box(height, width, crop=None):
    """The box (x0, y0, w, h) of the config's crop: None (the centre square), an int
    (the centre square of that side, at most the image's) or [x0, y0, w, h]."""
    if crop is None:
        return centre_box(height, width)
    if isinstance(crop, int | np.integer):
        side = min(int(crop), height, width)
        return (width - side) // 2, (height - side) // 2, side, side
    return tuple(crop)


def crop(image, box):
    """Crops image [H, W, C] to box (x0, y0, w, h), rounded to whole pixels; outside
    the image the border is replicated. Returns [h, w, C]."""
    x0, y0, w, h = (int(round(float(v))) for v in box)
    if w <= 0 or h <= 0:
        raise InputError(f"empty crop box {tuple(box)}")
    height, width = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + w <= width and y0 + h <= height:
        return image[y0:y0 + h, x0:x0 + w]  # a view
    ys = np.clip(np.arange(y0, y0 + h), 0, height - 1)
    xs = np.clip(np.arange(x0, x0 + w), 0, width - 1)
    return image[ys[:, None], xs[None, :]]


def cropped(image, crop_spec=None):
    """image [H, W, C] (read or read_samples) cut to the config's crop (see crop_box):
    float32 [h, w, 3] in [0, 1], contiguous."""
    box = crop_box(image.shape[0], image.shape[1], crop_spec)
    return np.ascontiguousarray(to_float(crop(image, box)))


def resize(image, size, value_range=(0.0, 1.0)):
    """Resizes [h, w, C] or [B, h, w, C] (any h, w) to size x size: bilinear with
    antialiasing, float32. A numpy array or a tensor in, a tensor out. Stored samples
    (read_samples: uint8 [h, w, 3], uint16 grey [h, w, 1]) are resized as they are and
    then scaled to [0, 1] (RGB): the same within 2e-7, without a float copy of the photo.

    value_range: the result is clipped to it (the filter's weights are positive, so
    only float rounding leaves it); None for data other than images (depth)."""
    import tensorflow as tf

    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(
        getattr(image, "dtype", None))
    if scale is not None:  # numpy samples
        image = tf.convert_to_tensor(np.ascontiguousarray(image))
    else:
        image = tf.convert_to_tensor(image, tf.float32)
    out = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    if scale is not None:
        out = out / scale
        if out.shape[-1] == 1:
            out = tf.repeat(out, 3, axis=-1)
    if value_range is not None:
        out = tf.clip_by_value(out, *value_range)
    return out


def prepare(image, size, crop_spec=None):
    """Crops (see crop_box) and resizes a read image [H, W, 3] (read or read_samples):
    numpy [S, S, 3]."""
    box = crop_box(image.shape[0], image.shape[1], crop_spec)
    return resize(crop(image, box), size).numpy()


def load(path, size, crop_spec=None):
    """read + prepare: the model input of an image file, numpy float32 [S, S, 3]."""
    return prepare(read_samples(path), size, crop_spec)


# --------------------------------------------------------------------------------------
# Encoded bytes, in TensorFlow ops (the serving graph)
# --------------------------------------------------------------------------------------
def decode(data):
    """Decodes one encoded image (a scalar tf.string) as read() reads the file: float32
    [H, W, 3] in [0, 1], EXIF orientation applied. TensorFlow ops only."""
    import tensorflow as tf

    head = tf.strings.substr(data, 0, 32)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), _JPEG)
    is_png = tf.equal(tf.strings.substr(head, 0, 8), _PNG)
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(head + b"\0" * 32, 0, 32), tf.uint8),
                  tf.int32)
    png16 = is_png & tf.equal(raw[24], 16)
    png16_grey = png16 & tf.equal(raw[25], 0)

    def jpeg():
        im = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
        return tf.cast(im, tf.float32) / 255.0

    def png_16bit():
        im = tf.cast(tf.io.decode_png(data, channels=3, dtype=tf.uint16), tf.float32)
        # Pillow keeps 16 bits of grey only; colour it reads at 8 (the high byte).
        return tf.where(png16_grey, im / 65535.0, tf.floor(im / 256.0) / 255.0)

    def other():
        im = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        return tf.cast(im, tf.float32) / 255.0

    pixels = declared_pixels(data)
    check = tf.debugging.assert_less_equal(
        pixels, tf.constant(MAX_PIXELS, tf.int64),
        message=f"an image declares more pixels than the limit of {MAX_PIXELS:,} "
                "(TFSYM3D_MAX_PIXELS; a GIF's frames counted together)")
    size = tf.cast(tf.strings.length(data), tf.int64)
    honest = tf.debugging.assert_equal(
        is_jpeg & (pixels > JPEG_MAX_PIXELS_PER_BYTE * size), False,
        message="corrupt JPEG: its header declares more pixels than its bytes can hold")
    with tf.control_dependencies([check, honest]):
        data = tf.identity(data)
    image = tf.case([(is_jpeg, jpeg), (png16, png_16bit)], default=other)
    image = tf.ensure_shape(image, [None, None, 3])
    return orient(image, exif_orientation(data))


def declared_pixels(data):
    """Width x height as an encoded image's header declares it (a scalar tf.int64), read
    before decoding: JPEG (tf.image.extract_jpeg_shape), PNG (IHDR), BMP and GIF (their
    headers; a GIF's times its frames, which TensorFlow's decoder holds all of even when
    it returns the first); 0 for anything else (the decoder then refuses it)."""
    import tensorflow as tf

    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data + b"\0" * 32, 0, 32), tf.uint8),
                  tf.int64)

    def be32(i):
        return raw[i] * 16777216 + raw[i + 1] * 65536 + raw[i + 2] * 256 + raw[i + 3]

    def le(i, n):
        return sum(raw[i + k] * 256 ** k for k in range(n))

    def jpeg():
        shape = tf.image.extract_jpeg_shape(data, output_type=tf.int64)
        return shape[0] * shape[1]

    head = tf.strings.substr(data, 0, 8)
    bmp_height = le(22, 4)
    bmp_height = tf.where(bmp_height >= 2 ** 31, 2 ** 32 - bmp_height, bmp_height)  # top-down
    return tf.case([
        (tf.equal(tf.strings.substr(head, 0, 3), _JPEG), jpeg),
        (tf.equal(head, _PNG), lambda: be32(16) * be32(20)),
        (tf.equal(tf.strings.substr(head, 0, 2), b"BM"), lambda: le(18, 4) * bmp_height),
        (tf.equal(tf.strings.substr(head, 0, 3), b"GIF"),
         lambda: le(6, 2) * le(8, 2) * gif_frames(data)),
    ], default=lambda: tf.constant(0, tf.int64))


def gif_frames(data):
    """The frames of a GIF (a scalar tf.string), counted by walking its blocks without
    decoding: after the header and global colour table, extensions (0x21, label, then
    sub-blocks) and images (0x2C, a 10-byte descriptor, a local colour table, the LZW
    code size, then sub-blocks) up to the trailer 0x3B or the end. A scalar tf.int64;
    one step per block or sub-block (a sub-block is 1 to 256 bytes)."""
    import tensorflow as tf

    b = tf.io.decode_raw(data, tf.uint8)
    n = tf.size(b)

    def at(i):
        return tf.cast(tf.gather(b, tf.clip_by_value(i, 0, tf.maximum(n - 1, 0))), tf.int32)

    def table(flags):  # bytes of a colour table, from a descriptor's packed flags
        return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(2, flags % 8), 0)

    def step(pos, frames, in_blocks, done):
        c = at(pos)
        block = pos + c + 1  # inside sub-blocks (the terminator 0 is one byte)
        image = pos + 10 + table(at(pos + 9)) + 1
        pos_next = tf.where(in_blocks, block,
                            tf.where(c == 0x2C, image, tf.where(c == 0x21, pos + 2, pos)))
        starts = tf.logical_not(in_blocks) & ((c == 0x2C) | (c == 0x21))
        in_next = tf.where(in_blocks, c != 0, starts)
        frames += tf.cast(tf.logical_not(in_blocks) & (c == 0x2C), tf.int64)
        done = tf.logical_not(in_blocks) & tf.logical_not(starts)
        return pos_next, frames, in_next, done

    start = 13 + table(at(10))
    _, frames, _, _ = tf.while_loop(
        lambda pos, frames, in_blocks, done: (pos < n) & tf.logical_not(done), step,
        (start, tf.constant(0, tf.int64), tf.constant(False), tf.constant(False)),
        maximum_iterations=n)
    return tf.maximum(frames, 1)


def orient(image, orientation):
    """Applies an EXIF orientation (1-8; anything else is 1) to [H, W, C], as Pillow's
    ImageOps.exif_transpose does."""
    import tensorflow as tf

    def transpose():
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,                                    # 1: as stored
        lambda: tf.reverse(image, [1]),                   # 2: mirrored
        lambda: tf.reverse(image, [0, 1]),                # 3: turned 180
        lambda: tf.reverse(image, [0]),                   # 4: mirrored vertically
        transpose,                                        # 5: transposed
        lambda: tf.reverse(transpose(), [1]),             # 6: turned 90 clockwise
        lambda: tf.reverse(transpose(), [0, 1]),          # 7: transversed
        lambda: tf.reverse(transpose(), [0]),             # 8: turned 90 anticlockwise
    ]
    k = tf.where((orientation >= 1) & (orientation <= 8), orientation - 1, 0)
    return tf.switch_case(tf.cast(k, tf.int32), branches)


def exif_orientation(data):
    """The EXIF orientation tag (0x0112) of IFD0 in encoded bytes (a scalar tf.string):
    a JPEG's APP1 'Exif' segment or a PNG's eXIf chunk, within the first
    EXIF_SEARCH_BYTES. Returns an int32 scalar, 1 when there is none."""
    import tensorflow as tf

    b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 0, EXIF_SEARCH_BYTES) + b"\0" * 8,
                                 tf.uint8), tf.int32)
    n = tf.size(b)

    def find(pattern):
        """Index just after the first occurrence of pattern (n when absent)."""
        k = len(pattern)
        hit = tf.ones([n - k], tf.bool)
        for j, byte in enumerate(pattern):
            hit &= tf.equal(b[j:n - k + j], byte)
        where = tf.where(hit)[:, 0]
        return tf.cond(tf.size(where) > 0, lambda: tf.cast(where[0], tf.int32) + k,
                       lambda: n)

    tiff = tf.minimum(find(b"Exif\0\0"), find(b"eXIf"))
    little = tf.equal(tf.gather(b, tf.minimum(tiff, n - 1)), ord("I"))

    def u16(offset):
        lo = tf.gather(b, tf.clip_by_value(offset, 0, n - 1))
        hi = tf.gather(b, tf.clip_by_value(offset + 1, 0, n - 1))
        return tf.where(little, lo + hi * 256, lo * 256 + hi)

    def u32(offset):
        return tf.where(little, u16(offset) + u16(offset + 2) * 65536,
                        u16(offset) * 65536 + u16(offset + 2))

    ifd = tiff + u32(tiff + 4)
    count = tf.minimum(u16(ifd), EXIF_MAX_ENTRIES)
    entries = ifd + 2 + 12 * tf.range(EXIF_MAX_ENTRIES)
    is_tag = tf.equal(u16(entries), 0x0112) & (tf.range(EXIF_MAX_ENTRIES) < count) \
        & (entries + 10 <= n)
    values = tf.where(is_tag, u16(entries + 8), 0)
    found = (tiff < n) & tf.reduce_any(is_tag)
    return tf.where(found, tf.reduce_max(values), 1)


def crop_tensor(image, crop_spec=None):
    """cropped() in TensorFlow ops: image [H, W, C] (a tensor of any H, W) cut to the
    config's crop (see crop_box), the border replicated outside the image."""
    import tensorflow as tf

    h, w = tf.shape(image)[0], tf.shape(image)[1]
    if crop_spec is None or isinstance(crop_spec, int | np.integer):
        side = tf.minimum(h, w) if crop_spec is None else \
            tf.minimum(tf.minimum(h, w), int(crop_spec))
        x0, y0, bw, bh = (w - side) // 2, (h - side) // 2, side, side
    else:
        x0, y0, bw, bh = (int(round(float(v))) for v in crop_spec)
        if bw <= 0 or bh <= 0:
            raise InputError(f"empty crop box {tuple(crop_spec)}")
    ys = tf.clip_by_value(tf.range(y0, y0 + bh), 0, h - 1)
    xs = tf.clip_by_value(tf.range(x0, x0 + bw), 0, w - 1)
    return tf.gather(tf.gather(image, ys, axis=0), xs, axis=1)


def decode_and_prepare(data, size, crop_spec=None):
    """Encoded bytes (a scalar tf.string) -> the model input [S, S, 3]: decode, the
    config's crop (crop_tensor), resize. TensorFlow ops only (prepare's steps)."""
    import tensorflow as tf

    image = crop_tensor(decode(data), crop_spec)
    return tf.ensure_shape(resize(image, size), [size, size, 3])
