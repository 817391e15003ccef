"""Reconstruction: crop geometry and mesh layout against hand-computed values, and the
`tfsym3d reconstruct` command end to end on a small folder with broken files."""

import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from tfsym3d.io.depth import depth_png16
from tfsym3d.io.images import centre_box
from tfsym3d.reconstruct import inference, inputs, mesh, outputs, pictures, reconstruct_images
from tfsym3d.renderer import Renderer

S = 64  # configs/tiny.yaml
TRIM = mesh.BORDER_TRIM


def test_face_box_is_scaled_square_moved_down():
    # Box 40x40 at (10, 20): centre (30, 40) moves down 0.1 * 40 = 4; side 1.6 * 40 = 64.
    assert inputs.face_box((10, 20, 40, 40), 1.6, 0.1) == pytest.approx((-2, 12, 64, 64))
    # The longer side sets the square.
    assert inputs.face_box((0, 0, 20, 10), 1.0, 0.0) == pytest.approx((0, -5, 20, 20))


def test_unique_names():
    assert inputs.unique_names(["a/x.png", "b/x.jpg", "x_2.png", "c/y.png"]) == [
        "x", "x_2", "x_2_2", "y"]


def test_centre_box():
    assert centre_box(60, 100) == (20, 0, 60, 60)
    assert centre_box(101, 50) == (0, 25, 50, 50)


def test_colormap_and_depth_encoding():
    assert pictures.colormap(0.0) == pytest.approx(pictures.MAGMA[0])
    assert pictures.colormap(1.0) == pytest.approx(pictures.MAGMA[-1])
    # Halfway between the first two anchors (5 intervals).
    magma = pictures.MAGMA
    assert pictures.colormap(0.1) == pytest.approx((magma[0] + magma[1]) / 2, abs=1e-6)
    d = np.array([0.9, 1.0, 1.1, 1.2])
    assert depth_png16(d, 0.9, 1.1).tolist() == [65535, 32768, 0, 0]


def test_no_face_found_is_an_input_error(tmp_path):
    pytest.importorskip("cv2")
    path = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(path)
    with pytest.raises(inputs.InputError, match="no face found"):
        inputs.prepare(str(path), S, inputs.FaceDetector())


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three usable photos (one with an EXIF rotation), a corrupt and an empty file."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    # Stored 100x60 with red on the left and blue on the right; EXIF orientation 6
    # (rotate 90 degrees clockwise to display): displayed 60x100, red on top.
    side = np.zeros((60, 100, 3), np.uint8)
    side[:, :50] = [220, 10, 10]
    side[:, 50:] = [10, 10, 220]
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(side).save(root / "rotated.jpg", exif=exif, quality=95)
    Image.fromarray(rng.integers(0, 255, (80, 50, 4), np.uint8), "RGBA").save(root / "b.png")
    os.makedirs(root / "sub")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(root / "sub" / "c.webp")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not an image and not named: ignored")
    return root


@pytest.fixture(scope="module")
def reconstructed(model_run, photos, tmp_path_factory):
    from tests.test_evaluate import run

    out = tmp_path_factory.mktemp("out")
    status = run(["tfsym3d", "reconstruct", f"--checkpoint={model_run}", f"--out={out}",
                  "--batch_size=2", str(photos)])
    return out, status


@pytest.mark.slow
def test_cli_processes_the_good_files_and_names_the_bad(reconstructed, capsys):
    out, status = reconstructed
    assert status == 1
    assert sorted(os.listdir(out)) == ["b", "c", "contact_sheet.png", "index.html",
                                       "rotated", "shape_viewer.js"]
    expected = {"input.png", "canon_depth.png", "canon_depth16.png", "canon_depth.npy",
                "recon_depth.png", "recon_depth16.png", "recon_depth.npy", "canon_normal.png",
                "recon_normal.png", "albedo.png", "shading.png", "canon_image.png",
                "recon_image.png", "conf_l1.png", "conf_l1_flip.png", "symmetry.png",
                "mesh.obj", "mesh.mtl", "texture.png", "mesh.glb", "shape.js",
                "rotate.gif", "relight.gif", "params.json"}
    for name in ("b", "c", "rotated"):
        assert expected <= set(os.listdir(out / name)), name
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size == (len(pictures.SHEET_COLUMNS) * S, 3 * S)
    html = (out / "index.html").read_text()
    for name in ("b", "c", "rotated"):
        assert f"{name}/shape.js" in html and f"{name}/rotate.gif" in html


def test_cli_error_lines(model_run, photos, tmp_path, capsys):
    from tests.test_evaluate import run

    status = run(["tfsym3d", "reconstruct", f"--checkpoint={model_run}",
                  f"--out={tmp_path}", "--gifs=false", "--mesh=false",
                  str(photos / "broken.png"), str(photos / "empty.jpg"),
                  str(photos / "missing.png"), str(photos / "b.png")])
    err = capsys.readouterr().err
    assert status == 1
    assert f"{photos / 'broken.png'}: not a readable image" in err
    assert f"{photos / 'empty.jpg'}: empty file" in err
    assert f"{photos / 'missing.png'}: no such file or folder" in err
    assert "1 reconstructed" in err and "3 failed" in err
    assert os.path.isfile(tmp_path / "b" / "canon_depth.npy")
    assert not os.path.exists(tmp_path / "b" / "mesh.obj")
    assert run(["tfsym3d", "reconstruct", f"--checkpoint={tmp_path / 'nope'}",
                f"--out={tmp_path}", str(photos)]) == 1
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_exif_orientation_is_honoured(reconstructed):
    out, _ = reconstructed
    im = np.asarray(Image.open(out / "rotated" / "input.png"), np.float32)
    assert im.shape == (S, S, 3)
    top, bottom = im[:8].mean((0, 1)), im[-8:].mean((0, 1))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


@pytest.mark.slow
def test_meshes_load_back_with_texture(reconstructed):
    trimesh = pytest.importorskip("trimesh")
    out, _ = reconstructed
    n = S - 2 * TRIM
    mesh = trimesh.load(out / "c" / "mesh.obj", process=False)
    assert mesh.vertices.shape == (n * n, 3)
    assert mesh.faces.shape == (2 * (n - 1) ** 2, 3)
    assert mesh.visual.kind == "texture"
    assert mesh.visual.material.image.size == (n, n)
    scene = trimesh.load(out / "c" / "mesh.glb", process=False)
    (glb,) = scene.geometry.values()
    assert glb.vertices.shape == (n * n, 3) and glb.faces.shape == (2 * (n - 1) ** 2, 3)
    assert glb.visual.material.baseColorTexture.size == (n, n)
    # The GLB and the OBJ hold the same shape.
    assert np.allclose(np.sort(glb.vertices, 0), np.sort(mesh.vertices, 0), atol=1e-5)


@pytest.mark.slow
def test_gifs_have_the_expected_frames(reconstructed):
    out, _ = reconstructed
    for name, width in (("rotate.gif", 2 * S), ("relight.gif", S)):
        gif = Image.open(out / "b" / name)
        assert gif.n_frames == inference.GIF_FRAMES
        assert gif.size == (width * outputs.GIF_SCALE, S * outputs.GIF_SCALE)


@pytest.mark.slow
def test_python_api_gives_the_numbers_in_the_files(reconstructed, model_run, photos):
    from tfsym3d import load_model

    out, _ = reconstructed
    model = load_model(model_run)
    x = inputs.prepare(str(photos / "b.png"), S)
    maps = reconstruct_images(model, x[None], animations=False)
    assert np.allclose(np.load(out / "b" / "canon_depth.npy"), maps["canon_depth"][0],
                       atol=1e-5)
    assert np.allclose(np.load(out / "b" / "recon_depth.npy"), maps["recon_depth"][0],
                       atol=1e-5)
    params = json.loads((out / "b" / "params.json").read_text())
    assert params["light"]["ambient"] == pytest.approx(float(maps["canon_light_a"][0, 0]),
                                                       abs=1e-5)
    assert [params["view"]["rotation_degrees"][k] for k in ("x_pitch", "y_yaw", "z_roll")] \
        == pytest.approx(np.degrees(maps["view"][0, :3]).tolist(), abs=1e-4)
    depth16 = np.asarray(Image.open(out / "b" / "canon_depth16.png"))
    assert depth16 == pytest.approx(depth_png16(maps["canon_depth"][0], 0.9, 1.1), abs=1)


DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "mobile_demo")
SHOOT = os.path.join(DEMO, "tests", "shoot.mjs")
PAGE_BACKGROUND = (32, 36, 42)  # the viewer's (mobile_demo/web/view3d.js), #20242a


def _shape_pixels(page, name, shot):
    """The shape viewer of `name` on index.html as shown by headless Chromium from disk:
    (RGB [H, W, 3], which pixels the mesh covers [H, W])."""
    result = subprocess.run(["node", SHOOT, f"--url=file://{page}",
                             f"--selector=[data-shape='{name}'] canvas", f"--out={shot}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "pageerror" not in result.stdout, result.stdout  # the viewer ran
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(np.int32)
    return rgb, np.abs(rgb - PAGE_BACKGROUND).max(-1) > 8


@pytest.mark.browser
def test_index_html_shows_each_shape_upright(reconstructed, tmp_path):
    out, _ = reconstructed
    for name in ("b", "c", "rotated"):
        _, covered = _shape_pixels(out / "index.html", name, tmp_path / f"{name}.png")
        assert covered.mean() > 0.1, name  # the viewer is not empty
    # A flat square textured red above and blue below: red must show above blue.
    folder = tmp_path / "page" / "card"
    folder.mkdir(parents=True)
    texture = np.zeros([S, S, 3], np.float32)
    texture[:S // 2, :, 0] = 1.0
    texture[S // 2:, :, 2] = 1.0
    outputs.write_shape_script(str(folder), "card", np.full([S, S], 1.0, np.float32),
                               texture, Renderer(S))
    outputs.write_index(str(folder.parent), ["card"], mesh=True, gifs=False)
    rgb, covered = _shape_pixels(folder.parent / "index.html", "card", tmp_path / "card.png")
    rows = np.arange(rgb.shape[0])[:, None].repeat(rgb.shape[1], 1)
    red = covered & (rgb[..., 0] > 150) & (rgb[..., 2] < 100)
    blue = covered & (rgb[..., 2] > 150) & (rgb[..., 0] < 100)
    assert red.sum() > 1000 and blue.sum() > 1000
    assert rows[red].mean() < rows[blue].mean()  # image rows grow downwards


@pytest.mark.browser
def test_the_shipped_viewer_is_the_phone_pages_bundled(tmp_path):
    """tfsym3d/viewer/shape_viewer.js is what mobile_demo/build_viewer.sh makes of the
    phone page's viewer now (one source: rebuild it after changing those files)."""
    import sys

    fresh = tmp_path / "shape_viewer.js"
    result = subprocess.run(["bash", os.path.join(DEMO, "build_viewer.sh"), str(fresh)],
                            env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    shipped = os.path.join(os.path.dirname(outputs.__file__), "..", "viewer",
                           "shape_viewer.js")
    assert fresh.read_bytes() == open(shipped, "rb").read()
