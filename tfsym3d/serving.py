"""Requests for a tfsym3d SavedModel behind TF Serving: REST (JSON, base64 images) and
gRPC (tensorflow-serving-api PredictRequest); `tfsym3d serve-client` sends them
(tfsym3d.commands.serve_client).

    body = rest_bytes_request([open("face.jpg", "rb").read()])   # POST to :predict

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
