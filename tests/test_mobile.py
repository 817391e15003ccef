"""The phone demo (mobile_demo/): the web app in headless Chromium against the Python
TFLite interpreter, the Keras model and the Python mesh builder; bad input; the APK
checked as Android's tools check one. Needs Debian's chromium, smali, aapt, zipalign,
apksigner and android-framework-res and `npm ci --prefix mobile_demo` (the README's
install command)."""

import json
import os
import subprocess
import zipfile

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "mobile_demo")


def _module(path):
    """A script of the checkout as a module, by its path (sys.path left as it is)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


serve = _module(os.path.join(DEMO, "serve.py")).serve

S = 64
PHONE, DESKTOP = ("412x915", True), ("1280x900", False)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def built(exported, tmp_path_factory):
    """The demo built from the shared export (fp32 and int8), APK included."""
    out = tmp_path_factory.mktemp("demo")
    tflite = exported / "tflite"
    proc = subprocess.run(
        ["bash", os.path.join(DEMO, "build.sh"), f"--out={out}",
         f"--model={tflite / 'tfsym3d_fp32.tflite'}", f"--model={tflite / 'tfsym3d_int8.tflite'}"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    files = sorted(os.path.relpath(os.path.join(d, f), out)
                   for d, _, fs in os.walk(out / "web") for f in fs
                   if f != ".tfsym3d-mobile-demo")  # the build's marker, not in the APK
    return out, files  # the web app's files as built (a test adds a picture later)


@pytest.fixture(scope="module")
def site(built):
    server = serve(str(built[0] / "web"))
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    """A 64x64 synthetic face as a PNG (used as it is: no resize) and its pixels."""
    from tfsym3d.export import sample_images

    x = (sample_images(1, S, seed=21)[0] * 255 + 0.5).astype(np.uint8)
    path = tmp_path_factory.mktemp("face") / "face.png"
    Image.fromarray(x).save(path)
    return str(path), x.astype(np.float32) / 255


def drive(url, *args):
    proc = subprocess.run(["node", os.path.join(DEMO, "tests", "drive.mjs"), f"--url={url}",
                           *args], capture_output=True, text=True, timeout=300, cwd=DEMO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("viewport,touch", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_page_runs_the_model_as_python_does(site, exported, model_run, face, tmp_path,
                                            viewport, touch):
    from tfsym3d import Renderer, load_model
    from tfsym3d.export import convert
    from tfsym3d.reconstruct.mesh import mesh_arrays

    shot3d = tmp_path / "shape.png"
    report = drive(f"{site}index.html?model=tfsym3d_fp32.tflite", f"--viewport={viewport}",
                   *(["--touch"] if touch else []), f"--upload={face[0]}",
                   f"--screenshot={tmp_path / 'page.png'}", f"--shot3d={shot3d}",
                   "--light=60", f"--glb={tmp_path}")
    page = report["uploads"][0]
    result = page["result"]
    assert page["message"] == "", page["message"]
    assert result["model"] == "tfsym3d_fp32.tflite" and "LiteRT.js" in result["backend"]
    assert result["ms"] > 0 and len(result["view"]) == 6 and len(result["light"]) == 5
    depth = np.array(result["canon_depth"], np.float32).reshape(S, S)

    x = face[1][None]
    python = convert.runner("tflite", str(exported / "tflite" / "tfsym3d_fp32.tflite"))(x)
    assert np.abs(depth - python["canon_depth"][0]).max() <= 1e-4
    assert np.abs(np.array(result["view"]) - python["view"][0]).max() <= 1e-4
    model = load_model(model_run)
    keras = model(x)
    assert np.abs(depth - keras["canon_depth"].numpy()[0]).max() <= 1e-4

    # The depth and normal pictures are Python's (reconstruct's depth.png, normal.png).
    from tfsym3d.reconstruct.pictures import depth_image, normal_image

    cfg = model.cfg
    want = {"map_depth": depth_image(python["canon_depth"][0], cfg.min_depth, cfg.max_depth),
            "map_normal": normal_image(python["canon_normal"][0])}
    for name, picture in want.items():
        shown = np.array(page["canvases"][name], np.float32).reshape(S, S, 3)
        assert np.abs(shown - np.round(picture * 255)).max() <= 2, name

    vertices, faces, _ = mesh_arrays(depth, Renderer(S))
    np.testing.assert_allclose(np.array(page["vertices"]).reshape(-1, 3), vertices, atol=1e-5)

    # Download GLB: the same mesh, textured.
    import trimesh

    assert report["glb"] == "completed"
    glb = trimesh.load(tmp_path / "tfsym3d_shape.glb", force="mesh", process=False)
    np.testing.assert_allclose(glb.vertices, vertices, atol=1e-5)
    np.testing.assert_array_equal(glb.faces, faces)
    assert glb.visual.material.baseColorTexture.size == (S - 4, S - 4)
    # The light slider relights the canonical image.
    before, after = (np.array(report[k]) for k in ("relit_before", "relit_after"))
    assert np.abs(before - after).mean() > 1

    # The 3D view is not blank: its pixels vary with the depth's shading and texture.
    shape = np.asarray(Image.open(shot3d).convert("RGB"), np.float32)
    assert shape.shape[0] > 200 and shape.shape[1] > 200
    assert len(np.unique(shape.reshape(-1, 3), axis=0)) > 200
    assert Image.open(tmp_path / "page.png").size[0] == int(viewport.split("x")[0])


def test_live_mode_follows_the_camera(site, tmp_path):
    """Live mode with Chromium's fake camera playing a looping video of faces: frames are
    reconstructed one after another, the mesh follows, frames per second are shown."""
    write_y4m = _module(os.path.join(DEMO, "fake_camera.py")).write_y4m
    from tfsym3d.export import sample_images

    video = tmp_path / "faces.y4m"
    write_y4m(str(video), sample_images(4, S, seed=8))
    report = drive(f"{site}index.html?model=tfsym3d_int8.tflite", "--live=3",
                   f"--video={video}", f"--viewport={PHONE[0]}", "--touch")
    assert report["live_frames"] >= 3 and report["live_fps"] > 0
    assert report["live_timing"].startswith("live: ") and "frames/s" in report["live_timing"]
    assert len(report["live_vertices"]) == 3 * (S - 4) ** 2


def test_image_parameter_runs_once_and_writes_the_result(built, site, face, exported):
    import shutil

    from tfsym3d.export import convert

    shutil.copy(face[0], built[0] / "web" / "face_param.png")
    report = drive(f"{site}index.html?image=face_param.png&model=tfsym3d_int8.tflite",
                   "--result")
    result = report["result"]
    assert result["model"] == "tfsym3d_int8.tflite"
    python = convert.runner("tflite", str(exported / "tflite" / "tfsym3d_int8.tflite"))(
        face[1][None])
    # int8 kernels differ a little between the WebAssembly and x86 builds of XNNPACK.
    depth = np.array(result["canon_depth"]).reshape(S, S)
    assert np.abs(depth - python["canon_depth"][0]).max() <= 2e-3
    missing = drive(f"{site}index.html?image=nothing.png", "--result")
    assert missing["result"] == {"error": "nothing.png: HTTP 404"}


def test_mesh_js_is_the_python_mesh(built, tmp_path):
    """mesh.js of the built page (run by Node; its constants.js written from Python)
    against tfsym3d.reconstruct.mesh.mesh_arrays on a random depth map: vertices, faces
    and texture coordinates."""
    from tfsym3d import Renderer
    from tfsym3d.reconstruct.mesh import mesh_arrays

    r = Renderer(S)
    depth = np.random.default_rng(0).uniform(0.9, 1.1, (S, S)).astype(np.float32)
    camera = {"intrinsics": np.asarray(r.K, np.float64).tolist(),
              "rot_center_depth": float(r.rot_center_depth)}
    (tmp_path / "in.json").write_text(json.dumps({"depth": depth.ravel().tolist(),
                                                  "camera": camera}))
    script = (
        "import {meshVertices, meshFaces, meshUV} from './web/mesh.js';"
        "import {readFileSync} from 'fs';"
        f"const a = JSON.parse(readFileSync('{tmp_path / 'in.json'}'));"
        f"console.log(JSON.stringify({{v: Array.from(meshVertices(a.depth, {S}, {S}, a.camera)),"
        f"f: Array.from(meshFaces({S}, {S})), uv: Array.from(meshUV({S}, {S}))}}));")
    proc = subprocess.run(["node", "--input-type=module", "-e", script], cwd=built[0],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    js = json.loads(proc.stdout)
    vertices, faces, uv = mesh_arrays(depth, r)
    np.testing.assert_allclose(np.array(js["v"]).reshape(-1, 3), vertices, atol=1e-7)
    np.testing.assert_array_equal(np.array(js["f"]).reshape(-1, 3), faces)
    np.testing.assert_allclose(np.array(js["uv"]).reshape(-1, 2), uv, atol=1e-7)


def test_declared_size_js_reads_headers_as_pillow_does(built, tmp_path):
    """image.js declaredSize of the built page (run by Node) on PNG, JPEG (with an EXIF
    block before its frame), GIF, BMP (bottom-up and top-down) and WebP headers, against
    Pillow's sizes; the 20000x20000 PNG of 1 MB is read from its first bytes."""
    from tests import hostile_files

    files = {}
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("BMP", "bmp"),
                     ("WEBP", "webp")):
        path = tmp_path / f"a.{ext}"
        exif = Image.Exif()
        exif[0x0112], exif[0x010E] = 6, "x" * 3000  # orientation, a long description
        extra = {"exif": exif} if fmt == "JPEG" else {}
        Image.new("RGB", (37, 23), (1, 2, 3)).save(path, fmt, **extra)
        files[ext] = path
    top_down = tmp_path / "top_down.bmp"
    raw = bytearray(files["bmp"].read_bytes())
    raw[22:26] = (-23).to_bytes(4, "little", signed=True)
    top_down.write_bytes(bytes(raw))
    files["top_down"] = top_down
    files["huge"] = tmp_path / "huge.png"
    hostile_files.big_png(files["huge"], 20000, 20000)
    script = (
        "import {declaredSize} from './web/image.js';"
        "import {readFileSync} from 'fs';"
        f"const files = {json.dumps({k: str(v) for k, v in files.items()})};"
        "const out = {};"
        "for (const [k, p] of Object.entries(files)) "
        "out[k] = declaredSize(new Uint8Array(readFileSync(p).subarray(0, 262144)));"
        "console.log(JSON.stringify(out));")
    proc = subprocess.run(["node", "--input-type=module", "-e", script], cwd=built[0],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for key in ("png", "jpg", "gif", "bmp", "top_down"):
        assert got[key] == [37, 23], (key, got[key])
    assert got["webp"] is None  # decoded, then checked
    assert got["huge"] == [20000, 20000]


def test_bad_input_shows_a_message_and_the_next_photo_works(site, face, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    from tests import hostile_files

    bomb = tmp_path / "bomb.png"
    hostile_files.big_png(bomb, 20000, 20000)  # 1 MB; 1.6 GB as RGBA pixels
    huge = tmp_path / "huge.jpg"
    Image.fromarray(np.full((4000, 6000, 3), 128, np.uint8)).save(huge, quality=70)
    report = drive(f"{site}index.html", f"--viewport={PHONE[0]}", "--touch",
                   f"--upload={tmp_path / 'notes.png'}", f"--upload={tmp_path / 'empty.jpg'}",
                   f"--upload={bomb}", f"--upload={huge}", f"--upload={face[0]}",
                   "--camera=deny")
    notes, empty, refused, big, good = report["uploads"]
    assert refused["message"] == ("error: bomb.png: 20000x20000 is 400000000 pixels, over "
                                  "the limit of 50000000; refused before decoding")
    assert notes["message"] == "error: notes.png: not an image this browser can decode"
    assert empty["message"] == "error: empty.jpg: the file is empty"
    assert "error" in notes["result"] and "error" in empty["result"]
    assert big["message"] == "info: huge.jpg: 6000x4000; its centre square is resized to 64x64"
    assert len(big["result"]["canon_depth"]) == S * S
    assert good["message"] == "" and len(good["result"]["canon_depth"]) == S * S
    assert good["result"]["model"] == "tfsym3d_fp32.tflite"  # the first model built
    assert report["camera_message"].startswith("Camera access was denied")


def test_apk_holds_the_app_and_the_model_and_verifies(built):
    out, built_web = built
    apk = str(out / "tfsym3d-demo.apk")
    badging = subprocess.run(["aapt", "dump", "badging", apk], capture_output=True,
                             text=True, check=True).stdout
    assert "package: name='org.tfsym3d.demo'" in badging
    assert "launchable-activity: name='org.tfsym3d.demo.MainActivity'" in badging
    assert "uses-permission: name='android.permission.CAMERA'" in badging
    subprocess.run(["apksigner", "verify", apk], check=True)
    with zipfile.ZipFile(apk) as z:
        names = set(z.namelist())
        web = sorted(n[len("assets/"):] for n in names if n.startswith("assets/web/"))
        (out / "classes.dex").write_bytes(z.read("classes.dex"))
    assert web == built_web  # the whole web app, models and WebAssembly included
    assert "web/model/tfsym3d_fp32.tflite" in web and "classes.dex" in names
    listing = subprocess.run(["dexdump", "-h", str(out / "classes.dex")],
                             capture_output=True, text=True, check=True).stdout
    for name in ("MainActivity", "AssetClient", "CameraClient"):
        assert f"Class descriptor  : 'Lorg/tfsym3d/demo/{name};'" in listing


def test_build_names_a_missing_model_and_keeps_the_last_build(tmp_path):
    out = tmp_path / "demo"
    (out / "web").mkdir(parents=True)
    (out / "web" / "index.html").write_text("the last build")
    (out / "web" / ".tfsym3d-mobile-demo").touch()  # the last build's marker
    for model, message in ((tmp_path / "none.tflite", "no such file"),
                           (tmp_path / "bare.tflite", "bare.card.json: missing")):
        if model.name == "bare.tflite":
            model.write_bytes(b"TFL3")
        proc = subprocess.run(["bash", os.path.join(DEMO, "build.sh"), f"--model={model}",
                               f"--out={out}", "--no-apk"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert str(model.parent) in last and message in last, last
    assert (out / "web" / "index.html").read_text() == "the last build"
    assert sorted(os.listdir(tmp_path)) == ["bare.tflite", "demo"]  # no half-built folder
