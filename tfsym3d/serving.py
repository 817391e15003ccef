"""Requests for a tfsym3d SavedModel behind TF Serving: REST (JSON, base64 images) and
gRPC (tensorflow-serving-api PredictRequest).

    tfsym3d serve-client --rest=http://localhost:8501 [--model=tfsym3d] IMG...
    tfsym3d serve-client --grpc=localhost:8500 [--model=tfsym3d] IMG...   # [serving] extra
    tfsym3d serve-client --print IMG...     # show the REST request body

Serve the export with
    docker run -p 8501:8501 -p 8500:8500 \
        -v $PWD/exported/saved_model/tfsym3d:/models/tfsym3d -e MODEL_NAME=tfsym3d \
        tensorflow/serving

The encoded-image signature (serving_bytes) takes the files as they are; the float
signature (serving_default) takes images [N, S, S, 3] in [0, 1]. `run_locally` answers
a request with TensorFlow's own SavedModel loader, which is how the tests check that
the requests match the signatures.
"""

import base64
import json
import sys

import numpy as np

BYTES_SIGNATURE, BYTES_INPUT = "serving_bytes", "image_bytes"
FLOAT_SIGNATURE, FLOAT_INPUT = "serving_default", "images"


def rest_bytes_request(encoded):
    """REST body (a dict) for encoded images (a list of bytes), row format: each
    instance is {"b64": ...}, which TF Serving decodes into the string tensor."""
    return {"signature_name": BYTES_SIGNATURE,
            "instances": [{"b64": base64.b64encode(e).decode("ascii")} for e in encoded]}


def rest_float_request(images):
    """REST body (a dict) for images [N, S, S, 3] in [0, 1]."""
    return {"signature_name": FLOAT_SIGNATURE,
            "instances": np.asarray(images, np.float32).tolist()}


def grpc_bytes_request(encoded, model="tfsym3d"):
    """A tensorflow_serving PredictRequest for encoded images (a list of bytes)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = BYTES_SIGNATURE
    request.inputs[BYTES_INPUT].CopyFrom(tf.make_tensor_proto(list(encoded),
                                                              dtype=tf.string))
    return request


def grpc_float_request(images, model="tfsym3d"):
    """A tensorflow_serving PredictRequest for images [N, S, S, 3] in [0, 1]."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = FLOAT_SIGNATURE
    request.inputs[FLOAT_INPUT].CopyFrom(tf.make_tensor_proto(
        np.asarray(images, np.float32)))
    return request


def _rest_inputs(body):
    """(signature, {input name: numpy array}) of a REST body, decoded as TF Serving
    does: {"b64": ...} objects become bytes."""
    signature = body.get("signature_name", FLOAT_SIGNATURE)
    name = BYTES_INPUT if signature == BYTES_SIGNATURE else FLOAT_INPUT

    def decode(value):
        if isinstance(value, dict) and set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    if "instances" in body:
        values = decode(body["instances"])
    else:
        values = decode(body["inputs"][name] if isinstance(body["inputs"], dict)
                        else body["inputs"])
    if signature == BYTES_SIGNATURE:
        return signature, {name: np.array(values, dtype=object)}
    return signature, {name: np.asarray(values, np.float32)}


def run_locally(saved_model_dir, request):
    """Answers a REST body (dict or JSON text) or a gRPC PredictRequest with the
    SavedModel loaded by TensorFlow: {output name: numpy array}."""
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    if isinstance(request, str | bytes):
        request = json.loads(request)
    if isinstance(request, dict):
        signature, inputs = _rest_inputs(request)
    else:
        signature = request.model_spec.signature_name or FLOAT_SIGNATURE
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    fn = loaded.signatures[signature]
    out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def define_flags(fv):
    from absl import flags

    flags.DEFINE_string("rest", None, "TF Serving REST base URL, e.g. http://localhost:8501",
                        flag_values=fv)
    flags.DEFINE_string("grpc", None, "TF Serving gRPC address, e.g. localhost:8500",
                        flag_values=fv)
    flags.DEFINE_string("model", "tfsym3d", "The served model's name.", flag_values=fv)
    flags.DEFINE_boolean("print", False, "Print the REST body only.", flag_values=fv)


def main(fv, args):
    if not args:
        print("tfsym3d serve-client: give the image files to send", file=sys.stderr)
        return 2
    encoded = []
    for path in args:
        with open(path, "rb") as f:
            encoded.append(f.read())
    if fv.print or not (fv.rest or fv.grpc):
        print(json.dumps(rest_bytes_request(encoded))[:2000])
        return 0
    if fv.rest:
        import urllib.request

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
