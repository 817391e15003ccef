"""The tf.data pipelines on small folders made here: mixed formats and modes, EXIF
orientation, 16-bit images, a corrupt file, empty and missing folders, determinism;
and the synthetic generator's depth against an independent re-rendering."""

import csv

import numpy as np
import pytest
from PIL import Image

from tests import reference as ref
from tfsym3d.data import SkipCounter, image_dataset, paired_dataset
from tfsym3d.io.images import read


def _gradient(h, w):
    """An RGB test card: red grows to the right, green grows downwards."""
    r = np.tile(np.linspace(0, 255, w), (h, 1))
    g = np.tile(np.linspace(0, 255, h)[:, None], (1, w))
    return np.stack([r, g, np.full((h, w), 60.0)], -1).astype(np.uint8)


def _write_mixed(folder):
    folder.mkdir(parents=True)
    card = _gradient(24, 32)
    Image.fromarray(card).save(folder / "a.png")
    Image.fromarray(card).save(folder / "b.jpg", quality=95)
    (folder / "deeper").mkdir()
    Image.fromarray(card).save(folder / "deeper" / "c.bmp")
    Image.fromarray(card).save(folder / "deeper" / "d.webp", lossless=True)
    Image.fromarray(card).convert("P").save(folder / "e.png")  # palette
    Image.fromarray(card[..., 0]).save(folder / "f.png")  # greyscale
    Image.fromarray(card).convert("RGBA").save(folder / "g.png")
    Image.fromarray(card[..., 1].astype(np.uint16) * 257).save(folder / "h.png")  # 16-bit
    (folder / "notes.txt").write_text("not an image, not listed")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")


def test_mixed_formats_load_and_a_corrupt_file_is_skipped_and_counted(tmp_path, logged):
    _write_mixed(tmp_path / "test")
    counter = SkipCounter()
    ds = image_dataset(str(tmp_path), "test", image_size=16, batch_size=4, counter=counter)
    batches = [b.numpy() for b in ds]
    images = np.concatenate(batches)
    assert images.shape == (8, 16, 16, 3)  # 9 image files, one unreadable
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert counter.take() == [str(tmp_path / "test" / "broken.png")]
    assert "broken.png" in logged()
    # Colour images keep the test card's layout: red grows to the right.
    colour = images[:5]
    assert np.all(colour[:, 8, -2, 0] > colour[:, 8, 1, 0] + 0.5)


def test_exif_orientation_is_honoured(tmp_path):
    card = _gradient(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(card).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    got = read(str(tmp_path / "rot.jpg"))
    assert got.shape == (30, 20, 3)  # displayed upright: portrait
    # After a 90 degree clockwise turn, green (downwards before) grows to the left.
    assert got[15, 1, 1] > got[15, -2, 1] + 0.5


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    (tmp_path / "empty" / "test").mkdir(parents=True)
    (tmp_path / "empty" / "test" / "readme.txt").write_text("no images")
    with pytest.raises(ValueError, match="no image files"):
        image_dataset(str(tmp_path / "empty"), "test")
    with pytest.raises(ValueError, match="nowhere: no such folder"):
        image_dataset(str(tmp_path / "nowhere"), "train")


@pytest.mark.slow
def test_training_with_fewer_images_than_a_batch_is_a_clear_error(tmp_path):
    """Training drops incomplete batches; 3 images at batch 4 would make empty epochs."""
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(ValueError, match=r"train: 3 images, fewer than batch_size 4"):
        image_dataset(str(tmp_path), "train", image_size=8, batch_size=4, training=True)
    # Outside training the short batch is kept; with repeat, batches span epochs.
    kept = image_dataset(str(tmp_path), "train", image_size=8, batch_size=4)
    assert [b.shape[0] for b in kept] == [3]
    repeated = image_dataset(str(tmp_path), "train", image_size=8, batch_size=4,
                             training=True, repeat=True, seed=0)
    assert next(iter(repeated)).shape[0] == 4
    assert len(list(image_dataset(str(tmp_path), "train", image_size=8, batch_size=3,
                                  training=True, seed=0))) == 1
    from tfsym3d.data.synth import generate

    generate(str(tmp_path / "paired"), 5, image_size=16, seed=1, batch=5)
    with pytest.raises(ValueError, match=r"train: \d images, fewer than batch_size 64"):
        paired_dataset(str(tmp_path / "paired"), "train", image_size=16, training=True)


def test_training_order_and_flips_are_deterministic_for_a_seed(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            folder / f"{i:02d}.png")

    def first_epoch(seed):
        ds = image_dataset(str(tmp_path), "train", image_size=16, batch_size=4,
                           training=True, seed=seed)
        return np.concatenate([b.numpy() for b in ds])

    a, b, c = first_epoch(5), first_epoch(5), first_epoch(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_evaluation_datasets_keep_file_order_without_a_seed(tmp_path):
    """Outside training, batches follow the sorted file list even with no seed (a caller
    pairs them with per-file rows such as gt.csv). Each image is one flat grey level, so
    its position in the output names the file it came from."""
    folder = tmp_path / "test"
    folder.mkdir()
    levels = np.arange(40) * 6
    for i, level in enumerate(levels):
        Image.fromarray(np.full((16, 16, 3), level, np.uint8)).save(folder / f"{i:02d}.png")
    for _ in range(3):
        ds = image_dataset(str(tmp_path), "test", image_size=16, batch_size=4)
        got = np.concatenate([b.numpy()[:, 0, 0, 0] for b in ds])
        np.testing.assert_allclose(got * 255, levels, atol=0.5)


@pytest.mark.slow
def test_pipelines_turn_autotuning_off(tmp_path):
    """With tf.data's autotuner on, dropping an epoch's iterator waited for the tuner's
    thread: fit lost 10-40 s at the start of most epochs on a 2-core CPU. Both
    pipelines, in training and outside it, must keep it off."""
    from tfsym3d.data.synth import generate

    generate(str(tmp_path), 6, image_size=16, seed=1, batch=6)
    for training in (True, False):
        paired = paired_dataset(str(tmp_path), "train", image_size=16, batch_size=2,
                                training=training, seed=0)
        plain = image_dataset(str(tmp_path), "train", image_size=16, batch_size=2,
                              training=training, seed=0)
        for ds in (paired, plain):
            assert ds.options().autotune.enabled is False
            assert len(list(ds)) >= 1


def test_paired_dataset_reads_16_bit_depth(tmp_path):
    from tfsym3d.data.synth import generate

    generate(str(tmp_path), 12, image_size=16, seed=1, batch=12)
    images, depth = next(iter(paired_dataset(str(tmp_path), "train", image_size=16,
                                             batch_size=64)))
    assert images.shape[1:] == (16, 16, 3) and depth.shape[1:] == (16, 16)
    d = depth.numpy()
    assert d.min() >= 0.9 - 1e-6 and d.max() <= 1.1 + 1e-6
    # 16-bit depth resolves more than 256 levels inside a face.
    assert len(np.unique(d[d < 1.1 - 1e-6])) > 100


def test_generator_depth_matches_an_independent_rendering(tmp_path):
    """Re-render sample 0 from its canonical shape and the view written to gt.csv with
    the numpy z-buffer of tests/reference.py; the written 16-bit depth must agree, and
    the landmarks of gt.csv must lie on that surface."""
    from tfsym3d.data import synth
    from tfsym3d.io.depth import unit_to_depth

    size = 32  # at 16 px the nose tip is sharper than a pixel
    synth.generate(str(tmp_path), 10, image_size=size, seed=2, batch=10)
    with open(tmp_path / "train" / "gt.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["name"] == "000000"
    params = synth.sample_params(np.random.default_rng(2), 10)
    big = 2 * size
    depth, _, mask = synth.canonical_maps(params, 0, big, np.random.default_rng([2, 0]))
    K = ref.intrinsics(big, 10.0)
    verts, faces = ref.grid_mesh(depth, K)
    view = [np.radians(float(row["pitch"])), np.radians(float(row["yaw"])),
            np.radians(float(row["roll"])), float(row["tx"]), float(row["ty"]), 0.0]
    verts = ref.view_transform(verts, view, 1.0)
    keep = mask.reshape(-1)[faces].all(axis=1)  # triangles on the head only
    want, _ = ref.zbuffer(verts, faces[keep], K, big, big)
    z4 = want.reshape(size, 2, size, 2)
    full = np.isfinite(z4).all(axis=(1, 3))
    want_small = z4.mean(axis=(1, 3))

    png = np.asarray(Image.open(tmp_path / "train" / "depth" / "000000_depth.png"),
                     np.float64) / 65535.0
    got = unit_to_depth(png, synth.MIN_DEPTH, synth.MAX_DEPTH)
    fg = png > 0
    assert fg.mean() > 0.2  # the head fills a good part of the image
    # Pixels whose four sub-pixels all see the head agree to the 16-bit precision.
    agree = fg & full
    assert agree.sum() >= 0.9 * full.sum()
    np.testing.assert_allclose(got[agree], want_small[agree], atol=2e-4)
    # Landmarks (u, v in output pixels; z) lie on the rendered surface where visible.
    names = [k[:-2] for k in row if k.endswith("_z")]
    seen, close = 0, 0
    for name in names:
        u, v, z = (float(row[f"{name}_{c}"]) for c in "uvz")
        u0, v0 = int(np.floor(u)), int(np.floor(v))
        if 0 <= u0 < size - 1 and 0 <= v0 < size - 1 and agree[v0:v0 + 2, u0:u0 + 2].all():
            seen += 1
            du, dv = u - u0, v - v0  # the surface there, bilinear between pixel centres
            quad = got[v0:v0 + 2, u0:u0 + 2]
            there = ((1 - dv) * ((1 - du) * quad[0, 0] + du * quad[0, 1])
                     + dv * ((1 - du) * quad[1, 0] + du * quad[1, 1]))
            # The surface seen there is never behind the landmark (it may occlude it).
            assert there < z + 0.02, name
            close += abs(there - z) < 0.02
    assert seen >= len(names) // 2 and close >= seen // 2


def test_a_folder_is_listed_in_one_order_by_every_command(tmp_path):
    """Training's list_images and reconstruct/prepare's collect_inputs list a nested folder
    alike: sorted by path (os.walk's own order differs: a folder's files before its
    subfolders')."""
    from tfsym3d.data.layout import list_images
    from tfsym3d.reconstruct.inputs import collect_inputs

    for rel in ("b.png", "a/z.png", "a_1.png", "a/b/c.jpg", "A.PNG", "notes.txt"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    want = [str(tmp_path / r) for r in ("A.PNG", "a/b/c.jpg", "a/z.png", "a_1.png", "b.png")]
    assert list_images(str(tmp_path)) == want
    assert collect_inputs([str(tmp_path)]) == (want, [])
