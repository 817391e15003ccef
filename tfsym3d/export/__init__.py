"""Export for serving and the edge: a SavedModel in TF Serving's layout, TFLite (fp32,
fp16, dynamic-range int8, full-integer int8) and ONNX, each with a model card JSON.

    from tfsym3d.export import export_model
    written = export_model(model, "exported", formats=("saved_model", "tflite", "onnx"),
                           quantize=("none", "fp16", "int8"))

Layout of DIR:
  saved_model/NAME/1/            SavedModel: signatures serving_default (images) and
                                 serving_bytes (encoded images); the RECON_OUTPUTS
                                 (recon_depth, recon_normal, recon_im) included
  saved_model/NAME/model_card.json
  tflite/NAME_{fp32,fp16,dynamic,int8}.tflite + .card.json
  onnx/NAME.onnx + NAME.card.json

The outputs are the model's public contract (tfsym3d.model.OUTPUTS). The formats come
from the registry in tfsym3d.export.convert. int8 is calibrated on the images given, or
on the model's own training images when its data_dir is here, or on synthetic faces; the
card's notes say which.

Everything is written into DIR/.partial-*/ first and moved into place when its parity
check has run, so a failure leaves no half-written file looking valid.
"""

from tfsym3d.export.convert import FORMATS  # noqa: F401  (the package's API)
from tfsym3d.export.writer import (  # noqa: F401
    CALIBRATION_IMAGES,
    CALIBRATION_SYNTHETIC,
    PARITY_IMAGES,
    QUANTIZE,
    calibration_images,
    check_name,
    check_request,
    default_calibration,
    export_model,
    load_for_export,
    parse_list,
    sample_images,
)
