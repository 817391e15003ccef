"""The `tfsym3d` command: subcommands with absl flags (`--flag=value`).

    tfsym3d --help
    tfsym3d <command> --help

Each subcommand has its own flag set, so `--help` lists only its flags. Commands whose
implementation module is missing say so and exit with status 2. TensorFlow's start-up
lines (oneDNN, CUDA probing, "failed call to cuInit" on a machine without a GPU) are
hidden unless `--verbose` is given to any command; its warnings while the command runs
still show.

Errors: this is the one place where an error becomes the user's line. The user's
mistakes (tfsym3d.errors.UserError, and the ValueError / OSError the library raises
naming the file) are their message, with the status of their kind: 2 for a
command given wrongly or a bad config key in every command, else 1. Anything else that
escapes a command is also said in one line (its kind and first line), exit status 1;
`--verbose` shows its Python traceback instead. An interrupt (Ctrl-C) exits with status
130 and one line. What the library logs while a command runs (logger `tfsym3d`) is
written to stderr as `tfsym3d <command>: line`.
"""

import importlib
import logging
import os
import sys
import tempfile

from absl import flags

from tfsym3d.errors import missing_extra, no_space, one_line

# name -> (module of tfsym3d.commands with define_flags(fv) and main(fv, args), one line)
COMMANDS = {
    "synth": ("tfsym3d.commands.synth", "Render a synthetic face dataset with ground truth."),
    "train": ("tfsym3d.commands.train", "Train a model from a YAML config (resumes a run_dir)."),
    "evaluate": ("tfsym3d.commands.evaluate", "SIDE/MAD of a checkpoint and the baselines."),
    "reconstruct": ("tfsym3d.commands.reconstruct",
                    "Photos -> depth, normals, albedo, mesh, GIFs."),
    "export": ("tfsym3d.commands.export", "SavedModel (TF Serving), TFLite and ONNX export."),
    "prepare": ("tfsym3d.commands.prepare",
                "A folder of your photos -> square crops in splits."),
    "prepare-tfrecords": ("tfsym3d.commands.prepare_tfrecords",
                          "A dataset folder as sharded TFRecords."),
    "convert-official": ("tfsym3d.commands.convert_official",
                         "Convert the authors' PyTorch checkpoints."),
    "serve-client": ("tfsym3d.commands.serve_client",
                     "Send photos to a model behind TF Serving."),
    "pretrained": ("tfsym3d.commands.pretrained", "Fetch, list or pack models by name "
                   "(celeba, cat, tiny-faces...)."),
}


class _CommandLines(logging.Handler):
    """Writes each record of the `tfsym3d` logger to the current sys.stderr as
    `tfsym3d <command>: message`."""

    def __init__(self, name):
        super().__init__(logging.INFO)
        self.prefix = f"tfsym3d {name}: "

    def emit(self, record):
        try:
            print(self.prefix + record.getMessage(), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def show_library_lines(name):
    """Sends the `tfsym3d` logger's INFO and above to stderr, and only there, for command
    `name`. Returns a function that puts the logger back as it was."""
    logger = logging.getLogger("tfsym3d")
    before = logger.handlers, logger.level, logger.propagate
    logger.handlers = [_CommandLines(name)]
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def restore():
        logger.handlers, logger.level, logger.propagate = before[0], before[1], before[2]

    return restore


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
    restore = show_library_lines(name)
    try:
        status = call_main(name, module, fv, rest[1:], verbose)
    finally:
        restore()
    sys.exit(status)


def said(err):
    """(the one line, exit status) for an exception that escaped a command: the message of
    the user's mistakes (errors.UserError, ValueError) and of a file that cannot be read
    or written (OSError, which names it), else the error's kind and first line."""
    if isinstance(err, OSError) and no_space(err):
        return f"{err.filename + ': ' if err.filename else ''}no space left on device", 1
    if isinstance(err, (ValueError, OSError)):  # errors.UserError included
        return str(err), getattr(err, "status", 1)
    return missing_extra(err) or f"{one_line(err)} (--verbose shows the traceback)", 1


def call_main(name, module, fv, args, verbose):
    """Runs a command's main; returns its exit status. Errors that escape it are one
    line on stderr (see `said`) unless `verbose`, where they propagate with their
    traceback; Ctrl-C is status 130."""
    try:
        return module.main(fv, args) or 0
    except KeyboardInterrupt:
        print(f"tfsym3d {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if verbose:
            raise
        line, status = said(err)
        print(f"tfsym3d {name}: {line}", file=sys.stderr)
        return status


if __name__ == "__main__":
    run()
