"""Benchmark: `tfsym3d reconstruct` throughput with a full-size model.

    python benchmarks/bench_reconstruct.py [--num=64] [--batch=32] [--repeats=3]

Times, side by side and interleaved round after round, the whole reconstruction of the
same photos (reading and cropping, batched inference, writing every file) in three
modes: inference only (the maps, nothing written), maps written (PNGs, 16-bit depth,
.npy, params.json, contact sheet, index.html), and maps + meshes (OBJ, GLB) + GIFs.
The model has the paper's widths (configs' defaults, 64x64) and untrained weights;
the photos are synthetic faces made by `tfsym3d synth`. Prints images/s per mode.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from benchlib import interleaved_times  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=64, help="Photos per timed run.")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tfsym3d.config import Config
    from tfsym3d.data.synth import generate
    from tfsym3d.model import Unsup3D, build
    from tfsym3d.reconstruct.files import reconstruct_files
    from tfsym3d.reconstruct.inference import Reconstructor
    from tfsym3d.reconstruct.inputs import prepare

    work = tempfile.mkdtemp(prefix="bench_reconstruct_")
    generate(os.path.join(work, "data"), args.num + 2, seed=1)
    photos = os.path.join(work, "data", "train", "image")
    files = sorted(os.listdir(photos))[:args.num]
    paths = [os.path.join(photos, f) for f in files]
    model = build(Unsup3D(Config()))
    engine = Reconstructor(model)
    s = model.cfg.image_size

    def inference_only():
        for i in range(0, len(paths), args.batch):
            batch = np.stack([prepare(p, s) for p in paths[i:i + args.batch]])
            engine(batch, animations=False)

    def files_run(mesh, gifs):
        out = os.path.join(work, f"out_{mesh}_{gifs}")
        def call():
            reconstruct_files(model, paths, out, batch_size=args.batch, mesh=mesh,
                              gifs=gifs, engine=engine)

        return call

    modes = {"inference only": inference_only, "maps written": files_run(False, False),
             "maps + mesh + GIFs": files_run(True, True)}
    times = interleaved_times(list(modes.values()), args.repeats, warmup=1)
    print(f"{args.num} photos, batch {args.batch}, full-size model ({Config().nf_depth} "
          f"depth/albedo width), {args.repeats} interleaved repeats, medians:")
    base = times[0]
    for (name, _), t in zip(modes.items(), times, strict=True):
        print(f"  {name:<20} {t:7.2f} s  {args.num / t:6.1f} images/s  ({t / base:.2f}x "
              "inference only)")


if __name__ == "__main__":
    main()
