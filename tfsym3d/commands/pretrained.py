"""`tfsym3d pretrained`: fetch, list or pack trained models by name.

    tfsym3d pretrained celeba cat          # fetch (download and convert) into the cache
    tfsym3d pretrained --list              # every name, cached or not, and its address
    tfsym3d pretrained --pack=RUN --out=FILE.npz   # how tiny-faces is made

See tfsym3d.pretrained for the names, the cache and what a failed download leaves.
"""

from absl import flags

from tfsym3d.errors import UsageError
from tfsym3d.pretrained import cache_dir, fetch, listing, pack


def define_flags(fv):
    flags.DEFINE_boolean("list", False, "List the published models, cached or not.",
                         flag_values=fv)
    flags.DEFINE_string("pack", None, "A run directory to pack into --out (float16 "
                        "weights and its config: how tiny-faces is made).", flag_values=fv)
    flags.DEFINE_string("out", None, "The file --pack writes (.npz).", flag_values=fv)


def main(fv, args):
    if fv.pack:
        if not fv.out or not fv.out.endswith(".npz"):
            raise UsageError("--pack needs --out=FILE.npz")
        size = pack(fv.pack, fv.out)
        print(f"{fv.out}: {size / 2 ** 20:.2f} MiB")
        return 0
    if fv.list or not args:
        for name, d, size, url in listing():
            where = f"{d} ({size / 2 ** 20:.1f} MiB)" if d else "not cached"
            print(f"{name:<10} {where}  from {url}")
        return 0
    for name in args:
        fetch(name)
        print(cache_dir(name))
    return 0
