"""The phone demo's benchmark, in one run on this CPU: builds the web app from a
checkpoint (fp32, fp16 and int8 TFLite models), then

1. latency of one image in headless Chromium (LiteRT.js, WebAssembly/XNNPACK, the page
   cross-origin isolated so it uses 2 threads) for each model, median of 20 after a
   warm-up, beside the Python TFLite interpreter (XNNPACK, 2 threads) on the same files;
2. the live mode's frames per second with the int8 model, the camera being Chromium's
   fake device playing a looping video of test faces (goal: >= 10);
3. what quantisation costs: SIDE and MAD of each model's geometry (recon_depth rendered
   from its canon_depth and view) against the ground truth of a paired test split, and
   their ratio to fp32's (bar: int8 within 5% on both). The int8 model is calibrated on
   the model's own training images (its config's data_dir).

    python benchmarks/bench_mobile.py --checkpoint=runs/quickstart/run \
        --data=runs/quickstart/data [--out=runs/bench_mobile] [--num=100]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "mobile_demo"))
from fake_camera import write_y4m  # noqa: E402
from serve import serve  # noqa: E402

import tfsym3d  # noqa: E402, F401  (first: TensorFlow's start-up options)

KINDS = ("fp32", "fp16", "int8")


def drive(url, *args):
    proc = subprocess.run(["node", os.path.join(ROOT, "mobile_demo", "tests", "drive.mjs"),
                           f"--url={url}", *args], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode:
        sys.exit(f"bench_mobile: the browser run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def python_latency(path, image, repeats, threads=2):
    """Median ms of the Python TFLite interpreter on one image, after 3 warm-up runs."""
    from tfsym3d.export import convert

    run = convert.runner("tflite", path, threads)
    for _ in range(3):
        run(image)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(image)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def geometry_errors(paths, cfg, data, num):
    """{kind: (SIDE, MAD)} means over the first num test pairs."""
    import tensorflow as tf

    from tfsym3d.data.folder import paired_files, read_pair
    from tfsym3d.export import convert
    from tfsym3d.io.images import resize
    from tfsym3d.metrics import depth_errors
    from tfsym3d.renderer import Renderer

    s = cfg.image_size
    images, truth = [], []
    for image_path, depth_path in paired_files(data, "test")[:num]:
        im, d = read_pair(image_path, depth_path, cfg.crop, *cfg.resolved_gt_depth_range)
        images.append(resize(im, s).numpy())
        truth.append(resize(d[..., None], s, None).numpy()[..., 0])
    x, gt = np.stack(images).astype(np.float32), tf.constant(np.stack(truth), tf.float32)
    r = Renderer(s, cfg.fov, cfg.min_depth, cfg.max_depth, cfg.rot_center_depth)
    errors = {}
    for kind in KINDS:
        out = convert.runner("tflite", paths[kind])(x)
        recon = r.warp_canon_depth(out["canon_depth"], out["view"])
        e = depth_errors(recon, gt, r)
        errors[kind] = (float(np.mean(e["side"])), float(np.mean(e["mad"])))
    return errors, len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="paired data with a test split")
    parser.add_argument("--out", default="runs/bench_mobile")
    parser.add_argument("--num", type=int, default=100, help="test images for SIDE/MAD")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--live_seconds", type=float, default=10)
    args = parser.parse_args()

    from tfsym3d.checkpoints import config_path
    from tfsym3d.config import load_config
    from tfsym3d.io.images import read

    cfg = load_config(config_path(args.checkpoint))
    os.makedirs(args.out, exist_ok=True)
    build = subprocess.run(["bash", os.path.join(ROOT, "mobile_demo", "build.sh"),
                            f"--checkpoint={args.checkpoint}", f"--out={args.out}",
                            "--quantize=int8,none,fp16", "--no-apk"])
    if build.returncode:
        sys.exit("bench_mobile: mobile_demo/build.sh failed")
    web = os.path.join(args.out, "web")
    paths = {k: os.path.join(web, "model", f"tfsym3d_{k}.tflite") for k in KINDS}
    from tfsym3d.data.folder import paired_files

    pairs = paired_files(args.data, "test")
    if not pairs:
        sys.exit(f"bench_mobile: {args.data}: no paired test split")
    test_image = pairs[0][0]
    x = read(test_image)[None]
    if x.shape[1] != cfg.image_size:
        sys.exit(f"bench_mobile: {test_image}: not {cfg.image_size}x{cfg.image_size}")

    server = serve(web)
    site = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    rows = {}
    for kind in KINDS:
        report = drive(f"{site}?model=tfsym3d_{kind}.tflite", f"--upload={test_image}",
                       f"--repeat={args.repeats}")
        rows[kind] = {"browser_ms": float(np.median(report["repeat_ms"])),
                      "backend": report["uploads"][0]["result"]["backend"],
                      "python_ms": python_latency(paths[kind], x, args.repeats),
                      "mib": os.path.getsize(paths[kind]) / 2**20}
        print(f"{kind}: browser {rows[kind]['browser_ms']:.1f} ms, Python "
              f"{rows[kind]['python_ms']:.1f} ms", flush=True)

    from tfsym3d.export import sample_images

    video = os.path.join(args.out, "faces.y4m")
    write_y4m(video, sample_images(30, cfg.image_size, seed=4))
    live = drive(f"{site}?model=tfsym3d_int8.tflite", f"--live={args.live_seconds}",
                 f"--video={os.path.abspath(video)}", "--viewport=412x915", "--touch")
    server.shutdown()
    fps = live["live_fps"]
    print(f"live mode, int8: {fps:.1f} frames/s", flush=True)

    errors, n = geometry_errors(paths, cfg, args.data, args.num)
    results = {"latency": rows, "live_fps_int8": fps, "geometry": errors, "images": n,
               "checkpoint": args.checkpoint}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    print(f"\n| model | MiB | browser ms (median of {args.repeats}) | Python TFLite ms | "
          f"SIDE (x1e-2) | MAD (deg) | SIDE / fp32 | MAD / fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    side32, mad32 = errors["fp32"]
    for kind in KINDS:
        side, mad = errors[kind]
        print(f"| {kind} | {rows[kind]['mib']:.1f} | {rows[kind]['browser_ms']:.1f} | "
              f"{rows[kind]['python_ms']:.1f} | {100 * side:.3f} | {mad:.2f} | "
              f"{side / side32:.3f} | {mad / mad32:.3f} |")
    print(f"\nbrowser backend: {rows['int8']['backend']}; Python: 2 threads; {n} test images")
    print(f"live mode (int8, fake camera, 412x915): {fps:.1f} frames/s (goal >= 10)")
    side8, mad8 = errors["int8"]
    ok = abs(side8 / side32 - 1) <= 0.05 and abs(mad8 / mad32 - 1) <= 0.05
    print(f"int8 within 5% of fp32 on SIDE and MAD: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
