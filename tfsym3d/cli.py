"""The `tfsym3d` command: subcommands with absl flags (`--flag=value`).

    tfsym3d --help
    tfsym3d <command> --help

Each subcommand has its own flag set, so `--help` lists only its flags. Commands whose
implementation module is missing say so and exit with status 2. TensorFlow's start-up
lines (oneDNN, CUDA probing, "failed call to cuInit" on a machine without a GPU) are
hidden unless `--verbose` is given to any command; its warnings while the command runs
still show.

Errors: every command names the errors a user can cause (a missing file, a bad key) in one
line and exits non-zero. Anything else that escapes a command is also said in one line
(its kind and first line), exit status 1; `--verbose` shows its Python traceback instead.
An interrupt (Ctrl-C) exits with status 130 and one line.
"""

import importlib
import os
import sys

from absl import flags

from tfsym3d.errors import UserError, missing_extra

# name -> (module with define_flags(fv) and main(fv, args), one-line description)
COMMANDS = {
    "synth": ("tfsym3d.data.synth", "Render a synthetic face dataset with ground truth."),
    "train": ("tfsym3d.train", "Train a model from a YAML config (resumes a run_dir)."),
    "evaluate": ("tfsym3d.evaluate_cli", "SIDE/MAD of a checkpoint and the baselines."),
    "reconstruct": ("tfsym3d.reconstruct.cli", "Photos -> depth, normals, albedo, mesh, GIFs."),
    "export": ("tfsym3d.export.cli", "SavedModel (TF Serving), TFLite and ONNX export."),
    "prepare": ("tfsym3d.data.prepare", "A folder of your photos -> square crops in splits."),
    "prepare-tfrecords": ("tfsym3d.data.tfrecords", "A dataset folder as sharded TFRecords."),
    "convert-official": ("tfsym3d.official", "Convert the authors' PyTorch checkpoints."),
    "serve-client": ("tfsym3d.serving", "Send photos to a model behind TF Serving."),
    "pretrained": ("tfsym3d.pretrained", "Fetch, list or pack models by name (celeba, cat, "
                   "tiny-faces...)."),
}


def usage():
    lines = ["usage: tfsym3d <command> [--flag=value ...]", "", "commands:"]
    width = max(len(c) for c in COMMANDS)
    for name, (_, doc) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {doc}")
    lines += ["", "Run 'tfsym3d <command> --help' for the flags of a command; --verbose",
              "(any command) shows TensorFlow's start-up lines and Python tracebacks."]
    return "\n".join(lines)


def quiet_tensorflow():
    """Imports TensorFlow and lists its devices with file descriptor 2 sent to a
    temporary file: the C++ and absl lines they print (TF_CPP_MIN_LOG_LEVEL does not
    reach the absl ones) are dropped, or written out if the import fails."""
    if "tensorflow" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
    verbose = "--verbose" in argv[2:]
    argv = argv[:2] + [a for a in argv[2:] if a != "--verbose"]
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    if name not in COMMANDS:
        print(f"tfsym3d: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    if not verbose and not {"--help", "-h", "--helpfull"} & set(argv[2:]):
        quiet_tensorflow()  # --help lists flags without importing TensorFlow
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
    sys.exit(call_main(name, module, fv, rest[1:], verbose))


def no_space(err):
    """Whether an exception (an OSError, or TensorFlow's ResourceExhaustedError from a
    write) says the disk is full; a short write (numpy's 'N requested and M written')
    counts."""
    import errno

    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) \
        or "No space left on device" in str(err) \
        or (isinstance(err, OSError) and "requested and" in str(err))


def one_line(err, limit=300):
    """`Kind: first line of the message` of an exception, at most `limit` characters."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."


def call_main(name, module, fv, args, verbose):
    """Runs a command's main; returns its exit status. Errors that escape it are one
    line on stderr (status 1) unless `verbose`, where they propagate with their
    traceback; Ctrl-C is status 130."""
    try:
        return module.main(fv, args) or 0
    except KeyboardInterrupt:
        print(f"tfsym3d {name}: interrupted", file=sys.stderr)
        return 130
    except UserError as err:  # the user's mistake: its one line and status
        if verbose:
            raise
        print(f"tfsym3d {name}: {err}", file=sys.stderr)
        return err.status
    except Exception as err:
        if verbose:
            raise
        said = missing_extra(err) or f"{one_line(err)} (--verbose shows the traceback)"
        print(f"tfsym3d {name}: {said}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    run()
