"""The one preprocessing path (tfsym3d.io.images): Pillow's decoding and resizing as the
reference, and the same photo through every door (training, evaluation, reconstruction,
serving, int8 calibration) giving the same input tensor."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfsym3d.io import images

S = 64


def _photo(h=75, w=101, seed=0):
    """A photo-like uint8 image: smooth shading, edges and fine texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.4 + 0.3 * np.cos(5 * y),
                     0.3 + 0.5 * x * y], -1)
    base[(x - 0.5) ** 2 + (y - 0.35) ** 2 < 0.04] *= 0.5  # a dark disc: sharp edges
    base += rng.normal(0, 0.06, base.shape)
    return (np.clip(base, 0, 1) * 255).astype(np.uint8)


def _encoded(array, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _variants(h=75, w=101):
    """name -> encoded bytes: the cases a photo (h x w) can come as."""
    photo = _photo(h, w)
    grey16 = (np.random.default_rng(1).random((h - 5, w - 11)) * 65535).astype(np.uint16)
    out = {f"jpeg_exif{o}": _encoded(photo, "JPEG", quality=90, exif=_exif(o))
           for o in range(1, 9)}
    out.update({f"png_exif{o}": _encoded(photo, "PNG", exif=_exif(o)) for o in (3, 6, 8)})
    out.update({
        "png_grey16": _encoded(grey16, "PNG"),
        "png_grey": _encoded(photo[..., 0], "PNG"),
        "png_rgba": _encoded(np.dstack([photo, photo[..., :1]]), "PNG"),
        "png_palette": _encoded(np.asarray(Image.fromarray(photo).convert("P")), "PNG"),
        "bmp": _encoded(photo, "BMP"),
        "gif": _encoded(np.asarray(Image.fromarray(photo).convert("P")), "GIF"),
    })
    return out


@pytest.mark.parametrize("name", sorted(_variants()))
def test_decode_in_the_graph_reads_as_pillow_does(name):
    data = _variants()[name]
    want = images.read(io.BytesIO(data))
    got = tf.function(images.decode)(tf.constant(data)).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-6


def test_orientations_turn_the_photo_as_exif_says():
    photo = _photo(30, 40)
    # 6: stored turned 90 degrees anticlockwise, shown turned back clockwise.
    got = images.read(io.BytesIO(_encoded(photo, "PNG", exif=_exif(6))))
    np.testing.assert_allclose(got, np.rot90(photo, k=-1) / 255.0, atol=1e-7)
    got = images.read(io.BytesIO(_encoded(photo, "PNG", exif=_exif(8))))
    np.testing.assert_allclose(got, np.rot90(photo, k=1) / 255.0, atol=1e-7)


@pytest.mark.parametrize("side", [170, 64, 50])
def test_resize_is_pillows_bilinear(side):
    """Pillow's float mode to float precision, its 8-bit mode within 1/255."""
    photo = _photo(side, side, seed=side)
    got = images.resize(photo / np.float32(255), S).numpy()
    pil_float = np.stack([np.asarray(Image.fromarray(photo[..., c] / np.float32(255), "F")
                                     .resize((S, S), Image.BILINEAR)) for c in range(3)], -1)
    pil_8bit = np.asarray(Image.fromarray(photo).resize((S, S), Image.BILINEAR)) / 255.0
    assert np.abs(got - pil_float).max() < 1e-5
    assert np.abs(got - pil_8bit).max() <= 1.0 / 255.0


def test_crop_box_and_centre_square():
    assert images.centre_box(60, 100) == (20, 0, 60, 60)
    assert images.centre_box(101, 50) == (0, 25, 50, 50)
    assert images.crop_box(60, 100, 40) == (30, 10, 40, 40)
    assert images.crop_box(60, 100, 400) == (20, 0, 60, 60)
    assert images.crop_box(60, 100, [1, 2, 3, 4]) == (1, 2, 3, 4)


@pytest.mark.parametrize("crop,size", [(None, (75, 101)), (170, (200, 260)),
                                       ([8, 14, 100, 100], (200, 260))],
                         ids=["centre", "crop170", "box"])
def test_every_door_gives_the_same_input(tmp_path, crop, size):
    """Each variant as a file in a split folder, through the training pipeline, the
    evaluation reader, reconstruction, the serving graph and int8 calibration, with the
    config's crop (the default centre square, a side smaller than the photo, a box)."""
    from tfsym3d.data.folder import image_dataset, read_pair
    from tfsym3d.export import calibration_images
    from tfsym3d.reconstruct.inputs import prepare

    variants = {k: v for k, v in _variants(*size).items()
                if k in ("jpeg_exif6", "png_grey16", "png_grey", "png_rgba", "jpeg_exif1")}
    folder = tmp_path / "train"
    folder.mkdir()
    names = sorted(variants)
    for name in names:
        (folder / f"{name}.{'jpg' if name.startswith('jpeg') else 'png'}").write_bytes(
            variants[name])
    files = sorted(str(p) for p in folder.iterdir())
    assert [p.rsplit("/", 1)[1].split(".")[0] for p in files] == names

    doors = {}
    doors["training"] = next(iter(image_dataset(str(tmp_path), "train", image_size=S,
                                                crop=crop, batch_size=len(names),
                                                random_flip=False))).numpy()
    evaluation = []
    for path in files:
        h, w = images.read(path).shape[:2]
        depth = tmp_path / "depth.png"
        Image.fromarray(np.full((h, w), 30000, np.uint16)).save(depth)
        im, _ = read_pair(path, str(depth), crop, 0.9, 1.1)
        evaluation.append(images.resize(im, S).numpy())
    doors["evaluation"] = np.stack(evaluation)
    doors["reconstruction"] = np.stack([prepare(p, S, crop_spec=crop) for p in files])
    serving = tf.function(lambda d: images.decode_and_prepare(d, S, crop))
    doors["serving"] = np.stack([serving(tf.constant(variants[n])).numpy() for n in names])
    doors["calibration"] = calibration_images(str(folder), S, crop)
    want = np.stack([images.load(p, S, crop) for p in files])
    if crop is not None:  # the crop is not the centre square: it changed the input
        assert np.abs(want - np.stack([images.load(p, S) for p in files])).max() > 0.1
    assert want.shape == (len(names), S, S, 3)
    for door, got in doors.items():
        assert got.shape == want.shape, door
        assert np.abs(got - want).max() < 1e-5, door
    # The grey 16-bit photo keeps its 16 bits (not 8).
    grey16 = want[names.index("png_grey16")]
    assert np.any(np.abs(grey16 * 255 - np.round(grey16 * 255)) > 0.01)


def test_a_paired_split_read_as_images_leaves_out_its_depth_maps(tmp_path):
    from tfsym3d.data.folder import image_dataset, split_images
    from tfsym3d.data.synth import generate
    from tfsym3d.export import calibration_images

    generate(str(tmp_path), 20, image_size=32, seed=1)  # train: 16 image/depth pairs
    files = split_images(str(tmp_path / "train"))
    assert len(files) == 16 and all(os.sep + "image" + os.sep in f for f in files)
    assert len(calibration_images(str(tmp_path / "train"), 32)) == 16
    batches = list(image_dataset(str(tmp_path), "train", image_size=32, batch_size=32))
    assert sum(int(b.shape[0]) for b in batches) == 16


# Memory at the door: samples before floats, headers that lie, frames counted.

@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_turns_as_pillows_exif_transpose(orientation):
    from PIL import ImageOps

    data = _encoded(_photo(30, 40), "PNG", exif=_exif(orientation))
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    samples = images.read_samples(io.BytesIO(data))
    assert samples.dtype == np.uint8
    np.testing.assert_array_equal(samples, want)
    np.testing.assert_array_equal(images.read(io.BytesIO(data)), want / np.float32(255))


@pytest.mark.parametrize("kind", ["rgb", "grey16"])
def test_samples_resize_as_their_floats_do(kind):
    """uint8 and 16-bit grey samples are resized as they are and then scaled: the same
    model input as resizing read()'s floats, within 2e-7, and the same crop either way."""
    if kind == "rgb":
        data = _encoded(_photo(90, 70), "PNG")
    else:
        grey = (np.arange(90 * 70).reshape(90, 70) * 10).astype(np.uint16)
        data = _encoded(grey, "PNG")
    samples = images.read_samples(io.BytesIO(data))
    assert samples.dtype == (np.uint8 if kind == "rgb" else np.uint16)
    floats = images.read(io.BytesIO(data))
    for crop in (None, 50, [-5, 10, 60, 60]):
        got = images.prepare(samples, S, crop)
        want = images.prepare(floats, S, crop)
        assert got.shape == want.shape == (S, S, 3)
        assert np.abs(got - want).max() < 2e-7, crop
        np.testing.assert_array_equal(images.cropped(samples, crop), images.cropped(floats, crop))


def test_a_jpeg_header_that_lies_about_its_size_is_corrupt(tmp_path):
    """A 96x80 JPEG whose header says 7000x7000 (libjpeg would fill 49 Mpx with grey):
    refused by the reader and the serving graph, before decoding; a blank progressive
    JPEG, the most pixels per byte Pillow writes (~170), is read."""
    from tests import hostile_files

    path = tmp_path / "lie.jpg"
    hostile_files.lying_jpeg(path, 7000, 7000)
    with pytest.raises(images.InputError, match="corrupt JPEG: its header declares "
                                                "7000x7000 pixels, more than its"):
        images.read(str(path))
    with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt JPEG"):
        tf.function(images.decode)(tf.constant(path.read_bytes()))
    blank = _encoded(np.full((1500, 2000, 3), 128, np.uint8), "JPEG", progressive=True)
    assert 2000 * 1500 / len(blank) > 100
    assert images.read(io.BytesIO(blank)).shape == (1500, 2000, 3)
    assert images.decode(tf.constant(blank)).shape == (1500, 2000, 3)


def test_a_gifs_frames_are_counted_against_the_limit(monkeypatch):
    """TensorFlow's GIF decoder holds every frame, so the serving graph counts them from
    the blocks (Pillow's n_frames the reference) and refuses frames x size over the
    limit."""
    from tests import hostile_files

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (40, 50, 3), np.uint8)) for _ in range(7)]
    buffer = io.BytesIO()  # local colour tables, graphic control and loop extensions
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50,
                   loop=0, comment=b"x" * 300)
    animated = buffer.getvalue()
    assert Image.open(io.BytesIO(animated)).n_frames == 7
    count = tf.function(images.gif_frames)
    assert int(count(tf.constant(animated))) == 7
    assert int(count(tf.constant(_encoded(_photo(20, 30), "GIF")))) == 1

    monkeypatch.setattr(images, "MAX_PIXELS", 10 ** 6)
    for n, refused in ((99, False), (101, True)):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"frames{os.getpid()}.gif")
        hostile_files.many_frames_gif(path, n, 100)
        data = open(path, "rb").read()
        os.remove(path)
        assert int(count(tf.constant(data))) == n
        if refused:
            with pytest.raises(tf.errors.InvalidArgumentError, match="frames counted"):
                tf.function(images.decode)(tf.constant(data))
        else:
            assert tf.function(images.decode)(tf.constant(data)).shape == (100, 100, 3)


def test_a_depth_map_is_checked_before_it_is_decoded(tmp_path, monkeypatch):
    from tfsym3d.io.depth import read_depth_png

    path = tmp_path / "depth.png"
    Image.fromarray(np.full((30, 40), 30000, np.uint16)).save(path)
    assert read_depth_png(str(path), (30, 40)).shape == (30, 40)
    with pytest.raises(images.InputError, match="depth map 40x30 does not match its image "
                                                "20x20"):
        read_depth_png(str(path), (20, 20))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(images.InputError, match="depth map 40x30 is 1,200 pixels, over"):
        read_depth_png(str(path))
