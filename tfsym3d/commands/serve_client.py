"""`tfsym3d serve-client`: send photos to a tfsym3d SavedModel behind TF Serving.

    tfsym3d serve-client --rest=http://localhost:8501 [--model=tfsym3d] IMG...
    tfsym3d serve-client --grpc=localhost:8500 [--model=tfsym3d] IMG...   # [serving] extra
    tfsym3d serve-client --print IMG...     # show the REST request body

Serve the export with
    docker run -p 8501:8501 -p 8500:8500 \
        -v $PWD/exported/saved_model/tfsym3d:/models/tfsym3d -e MODEL_NAME=tfsym3d \
        tensorflow/serving

The files are sent as they are to the encoded-image signature (serving_bytes); each
answer's output shapes and view are printed. See tfsym3d.serving for the requests.
"""

import json
import urllib.request

import numpy as np
from absl import flags

from tfsym3d.errors import UsageError
from tfsym3d.serving import grpc_bytes_request, rest_bytes_request


def define_flags(fv):
    flags.DEFINE_string("rest", None, "TF Serving REST base URL, e.g. http://localhost:8501",
                        flag_values=fv)
    flags.DEFINE_string("grpc", None, "TF Serving gRPC address, e.g. localhost:8500",
                        flag_values=fv)
    flags.DEFINE_string("model", "tfsym3d", "The served model's name.", flag_values=fv)
    flags.DEFINE_boolean("print", False, "Print the REST body only.", flag_values=fv)


def main(fv, args):
    if not args:
        raise UsageError("give the image files to send")
    encoded = []
    for path in args:
        with open(path, "rb") as f:
            encoded.append(f.read())
    if fv.print or not (fv.rest or fv.grpc):
        print(json.dumps(rest_bytes_request(encoded))[:2000])
        return 0
    if fv.rest:
        url = f"{fv.rest.rstrip('/')}/v1/models/{fv.model}:predict"
        data = json.dumps(rest_bytes_request(encoded)).encode()
        req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as response:
            predictions = json.load(response)["predictions"]
        for path, p in zip(args, predictions, strict=True):
            print(path, {k: np.asarray(v).shape for k, v in p.items()},
                  "view:", np.round(p["view"], 3))
        return 0
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(fv.grpc))
    response = stub.Predict(grpc_bytes_request(encoded, fv.model), 30.0)
    for k, v in response.outputs.items():
        print(k, tf.make_ndarray(v).shape)
    return 0
