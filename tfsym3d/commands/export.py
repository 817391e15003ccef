"""`tfsym3d export`: SavedModel (TF Serving), TFLite and ONNX with model cards.

    tfsym3d export --checkpoint=PATH --out=DIR [--formats=saved_model,tflite,onnx]
                   [--quantize=none,fp16,dynamic,int8] [--calibration=IMAGE_DIR]
                   [--name=tfsym3d]

--quantize picks the TFLite variants (comma-separated): none (fp32), fp16 (float16
weights), dynamic (int8 weights), int8 (full integer, calibrated on --calibration
images or, without it, on the model's own training images when its config's data_dir is
here, else on synthetic faces). The SavedModel and ONNX files are float32. See
tfsym3d/export/__init__.py for the layout. Serve the SavedModel with
  docker run -p 8501:8501 -v $PWD/DIR/saved_model/NAME:/models/NAME -e MODEL_NAME=NAME \
      tensorflow/serving
and build requests with tfsym3d.serving (`tfsym3d serve-client`).
"""

from absl import flags

from tfsym3d import export
from tfsym3d.errors import UsageError, UserError, no_space


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "Run directory, checkpoint prefix or .keras file.",
                        flag_values=fv)
    flags.DEFINE_string("out", None, "Output folder.", flag_values=fv)
    flags.DEFINE_string("formats", "saved_model,tflite,onnx", "Comma-separated formats.",
                        flag_values=fv)
    flags.DEFINE_string("quantize", "none", "TFLite variants: none, fp16, dynamic, int8 "
                        "(comma-separated).", flag_values=fv)
    flags.DEFINE_string("calibration", None, "Folder of images for int8 calibration "
                        "(default: the model's training images, else synthetic faces).",
                        flag_values=fv)
    flags.DEFINE_string("name", "tfsym3d", "Model name (TF Serving's).", flag_values=fv)


def main(fv, args):
    if args:
        raise UsageError(f"unexpected arguments {args}")
    if not fv.checkpoint or not fv.out:
        raise UsageError("--checkpoint and --out are required")
    export.check_name(fv.name)  # before the slow loading
    formats = export.parse_list(fv.formats, export.FORMATS, "format")
    quantize = export.parse_list(fv.quantize, tuple(export.QUANTIZE), "quantisation")
    export.check_request(formats, quantize)  # before the slow loading too
    model = export.load_for_export(fv.checkpoint)
    calibration = None
    if fv.calibration:
        calibration = export.calibration_images(fv.calibration, model.cfg.image_size,
                                                model.cfg.crop)
    try:
        written = export.export_model(model, fv.out, formats, quantize, name=fv.name,
                                      checkpoint=fv.checkpoint, calibration=calibration)
    except Exception as err:  # a full disk (OSError, or TensorFlow's from a save)
        if not no_space(err):
            raise
        raise UserError(f"{fv.out}: no space left on device; nothing was written") from err
    print(f"tfsym3d export: wrote {len(written)} files into {fv.out}")
    return 0
