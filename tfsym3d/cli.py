"""The `tfsym3d` command: subcommands with absl flags (`--flag=value`).

    tfsym3d --help
    tfsym3d <command> --help

Each subcommand has its own flag set, so `--help` lists only its flags. Commands whose
implementation module is missing say so and exit with status 2.
"""

import importlib
import sys

from absl import flags

# name -> (module with define_flags(fv) and main(fv, args), one-line description)
COMMANDS = {
    "synth": ("tfsym3d.data.synth", "Render a synthetic face dataset with ground truth."),
    "train": ("tfsym3d.train", "Train a model from a YAML config (resumes a run_dir)."),
    "evaluate": ("tfsym3d.evaluate_cli", "SIDE/MAD of a checkpoint and the baselines."),
    "reconstruct": ("tfsym3d.reconstruct", "Photos -> depth, normals, albedo, mesh, GIFs."),
    "export": ("export.cli", "SavedModel (TF Serving), TFLite and ONNX export."),
    "prepare-tfrecords": ("tfsym3d.data.tfrecords", "A dataset folder as sharded TFRecords."),
    "convert-official": ("tfsym3d.official", "Convert the authors' PyTorch checkpoints."),
}


def usage():
    lines = ["usage: tfsym3d <command> [--flag=value ...]", "", "commands:"]
    width = max(len(c) for c in COMMANDS)
    for name, (_, doc) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {doc}")
    lines += ["", "Run 'tfsym3d <command> --help' for the flags of a command."]
    return "\n".join(lines)


def _load(name):
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return None
        raise
    if not (hasattr(module, "define_flags") and hasattr(module, "main")):
        return None
    return module


def run(argv=None):
    """Entry point of the console script. Returns (and exits with) the status code."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        status = 0 if len(argv) >= 2 else 2
        sys.exit(status)
    name = argv[1]
    if name not in COMMANDS:
        print(f"tfsym3d: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module = _load(name)
    if module is None:
        print(f"tfsym3d {name}: not implemented yet in this version", file=sys.stderr)
        sys.exit(2)
    fv = flags.FlagValues()
    flags.DEFINE_boolean("help", False, "Show the flags of this command.", flag_values=fv)
    module.define_flags(fv)
    try:
        rest = fv([f"tfsym3d {name}"] + argv[2:])
    except flags.Error as err:
        print(f"tfsym3d {name}: {err}", file=sys.stderr)
        sys.exit(2)
    if fv.help:
        doc = (module.__doc__ or COMMANDS[name][1]).strip()
        print(f"usage: tfsym3d {name} [--flag=value ...]\n\n{doc}\n\nflags:")
        print(fv.get_help(include_special_flags=False))
        sys.exit(0)
    status = module.main(fv, rest[1:]) or 0
    sys.exit(status)


if __name__ == "__main__":
    run()
