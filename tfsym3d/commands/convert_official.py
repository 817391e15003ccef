"""`tfsym3d convert-official`: the authors' PyTorch checkpoints as tfsym3d models.

    tfsym3d convert-official pretrained_celeba/checkpoint030.pth --out=runs/celeba_official
    tfsym3d convert-official checkpoint030.pth --out=synface.keras --config=configs/synface.yaml
    tfsym3d convert-official --vgg16=vgg16-397923af.pth --out=vgg16_torch_notop.h5

Reads a checkpoint of the authors' trainer (netD, netA, netL, netV and, unless the model
has no confidence maps, netC; their optimizer states and metrics are ignored) or a
model-only checkpoint, in either torch.save format, without torch and without running
code from the file, and writes it as a run directory (config.yaml + a checkpoint) or a
`.keras` file. Every other command also takes the `.pth` itself; this writes it once.

The config is the authors' experiment: --config, else the one the authors' own folder
names name (`pretrained_NAME/`, `results/NAME/`), else syncar for a model without netC
and celeba otherwise; the widths come from the file and the renderer behaves as the
authors' did. See tfsym3d.official.

--vgg16 converts torchvision's VGG16 ImageNet weights (the file the authors' perceptual
loss loads) into a Keras VGG16 weights file without the top; point the config key
vgg16_weights at it and set vgg16_preprocess: torch.
"""

from absl import flags

from tfsym3d.config import AUTHORS_RENDERER
from tfsym3d.errors import UsageError
from tfsym3d.official import convert, convert_vgg16, write_model


def define_flags(fv):
    flags.DEFINE_string("out", None, "Run directory, or a .keras file, to write (for "
                        "--vgg16: the .h5 weights file).", flag_values=fv)
    flags.DEFINE_string("config", None, "Config of the converted model (a preset name, "
                        "or tfsym3d's or the authors' YAML); default: from the authors' folder "
                        "names or the networks.", flag_values=fv)
    flags.DEFINE_string("vgg16", None, "Convert torchvision's VGG16 weights file instead.",
                        flag_values=fv)


def main(fv, args):
    if not fv.out:
        raise UsageError("--out is required")
    if fv.vgg16:
        if args:
            raise UsageError(f"unexpected arguments {args}")
        convert_vgg16(fv.vgg16, fv.out)
        print(f"wrote {fv.out}: use it with vgg16_weights: {fv.out} and "
              "vgg16_preprocess: torch")
        return 0
    if len(args) != 1:
        raise UsageError("give one CHECKPOINT.pth (or --vgg16=FILE)")
    model, epoch, config_file, why = convert(args[0], fv.config)
    write_model(model, fv.out)
    cfg = model.cfg
    print(f"config: {config_file} (chosen by {why}); widths from the file: nf_depth "
          f"{cfg.nf_depth}, zdim_depth {cfg.zdim_depth}, nf_light {cfg.nf_light}, "
          + (f"nf_conf {cfg.nf_conf}, zdim_conf {cfg.zdim_conf}" if cfg.use_conf_map
             else "no confidence network"))
    print("renderer: the authors' (" + ", ".join(f"{k} {getattr(cfg, k)}" for k in
                                                 AUTHORS_RENDERER) + ")")
    print(f"wrote {fv.out}" + (f" (epoch {epoch})" if epoch is not None else ""))
    return 0
