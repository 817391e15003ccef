"""`tfsym3d evaluate`: depth, viewpoint and landmark accuracy on paired data with ground
truth, for a checkpoint and always for the paper's two baselines.

    tfsym3d evaluate [--checkpoint=PATH] --data=DIR [--json=FILE] [--csv=FILE]
    tfsym3d evaluate --config=experiments/test_synface.yml    # the authors' file as it is

DIR is a dataset root in the paired layout (its test split is used, or --split) or one
split folder (image/, depth/, optionally gt.csv). Rows of the printed table:
  model         the checkpoint's recon_depth (when --checkpoint is given)
  baseline_null a constant depth (the middle of the depth range)
  baseline_avg  the mean ground-truth depth map of the split
SIDE is reported x1e-2 and MAD in degrees, mean and standard deviation over the images.
With a checkpoint and a gt.csv, the viewpoint errors (pitch/yaw/roll MAE in degrees, raw
and with each angle's mean offset removed, and the slope and correlation of each predicted
angle regressed on the true one) and the landmark depth correlation (sum over
landmarks of the Pearson correlation over images; perfect = number of landmarks) are
reported too. --json writes {"model"|"baseline_null"|"baseline_avg": {"side", "side_std",
"mad", "mad_std", "mad_unit", "mad_unit_std", "n", "coverage"}, ...}; --csv writes one
row per image and method. "mad" is the paper's MAD as the authors compute it: their
normals n / (|n| + 1e-7) are ~0.3% short at 64 px, so identical depth maps score ~6.5
degrees; "mad_unit" uses unit normals (0 for identical maps).
coverage is the mean share of the ground-truth face inside the SIDE/MAD mask (the mask
also needs the prediction to be valid there); the table warns when the model's is below
LOW_COVERAGE, since scores over a few pixels are not comparable.
"""

from absl import flags

from tfsym3d.config import Config, load_config
from tfsym3d.errors import UsageError
from tfsym3d.evaluation import evaluate, format_table, write_csv, write_json
from tfsym3d.loader import load_model


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "Run directory, checkpoint prefix, .keras file "
                        "or the authors' .pth (default: the config's checkpoint; without "
                        "one only the baselines are evaluated).",
                        flag_values=fv)
    flags.DEFINE_string("data", None, "Paired dataset root or split folder.", flag_values=fv)
    flags.DEFINE_string("split", "test", "Split to evaluate when --data is a root.",
                        flag_values=fv)
    flags.DEFINE_string("json", None, "Write the summary as JSON here.", flag_values=fv)
    flags.DEFINE_string("csv", None, "Write per-image results as CSV here.", flag_values=fv)
    flags.DEFINE_integer("batch_size", 64, "Images per batch.", flag_values=fv)
    flags.DEFINE_string("config", None, "Config (a preset name, or a YAML file: tfsym3d's "
                        "or the authors' test_*.yml): data and checkpoint when the flags "
                        "give none, the camera and depth range of the baselines, the "
                        "experiment of a .pth checkpoint.",
                        flag_values=fv)


def main(fv, args):
    if args:
        raise UsageError(f"unexpected arguments {args}")
    cfg = load_config(fv.config) if fv.config else Config()
    data = fv.data or cfg.data_dir
    if not data:
        raise UsageError("--data is required (or a config with data_dir)")
    checkpoint = fv.checkpoint or cfg.checkpoint
    model = load_model(checkpoint, fv.config) if checkpoint else None
    if model is not None:
        cfg = model.cfg
    report = evaluate(model, cfg, data, fv.split, fv.batch_size)
    print(format_table(report))
    if fv.json:
        write_json(report, fv.json)
    if fv.csv:
        write_csv(report, fv.csv)
    return 1 if report["skipped"] else 0
