#!/usr/bin/env python3
"""Builds the ONNX models the Python worker's tests (and the README's example) serve.

    python3 models/make_models.py OUTPUT_DIR

writes, deterministically (fixed seeds, no downloads: scikit-learn ships the iris data set):

    OUTPUT_DIR/iris/1/model.onnx   logistic regression, C=0.05 (strong regularisation)
    OUTPUT_DIR/iris/2/model.onnx   logistic regression, C=100 (weak regularisation)
    OUTPUT_DIR/mlp/1/model.onnx    3 dense layers, 256 wide (32 -> 256 -> 256 -> 10), ReLU, numpy weights

The iris models take `X` FP32 [-1, 4] and answer `label` INT64 [-1] and `probabilities`
FP32 [-1, 3] (skl2onnx with zipmap off, so that both are tensors). The MLP
takes `input` FP32 [-1, 32] and answers `logits` FP32 [-1, 10]. Every model has a dynamic first
dimension, so the worker batches it. Needs onnx, skl2onnx and scikit-learn
(Tests/interop/requirements.txt); the .onnx files are not committed.
"""

import os
import sys

import numpy as np

IRIS_VERSIONS = {"1": {"C": 0.05}, "2": {"C": 100.0}}
MLP_SIZES = (32, 256, 256, 10)
OPSET = 17


def iris_model(C):
    """An iris classifier as ONNX bytes: standard scaling then logistic regression."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_iris(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000, random_state=0))
    pipeline.fit(features.astype(np.float32), labels)
    onnx_model = to_onnx(
        pipeline, features[:1].astype(np.float32), options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": OPSET, "ai.onnx.ml": 3})
    return onnx_model.SerializeToString()


def mlp_model(sizes=MLP_SIZES, seed=7):
    """A dense ReLU network with He-initialised weights from a fixed seed, as ONNX bytes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, initializers = [], []
    previous = "input"
    layers = len(sizes) - 1
    for index in range(layers):
        fan_in, fan_out = sizes[index], sizes[index + 1]
        weight = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        bias = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        initializers += [numpy_helper.from_array(weight, f"w{index}"), numpy_helper.from_array(bias, f"b{index}")]
        last = index == layers - 1
        output = "logits" if last else f"dense{index}"
        nodes.append(helper.make_node("Gemm", [previous, f"w{index}", f"b{index}"], [output]))
        if not last:
            nodes.append(helper.make_node("Relu", [output], [f"relu{index}"]))
            output = f"relu{index}"
        previous = output
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", sizes[-1]])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="switchyard-make-models")
    model.ir_version = 8
    return model.SerializeToString()


def write_all(directory):
    """Writes every model under `directory`; returns {"iris/1": path, ...}."""
    paths = {}

    def write(name, version, data):
        path = os.path.join(directory, name, version, "model.onnx")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)
        paths[f"{name}/{version}"] = path

    for version, parameters in IRIS_VERSIONS.items():
        write("iris", version, iris_model(**parameters))
    write("mlp", "1", mlp_model())
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUTPUT_DIR")
    for key, path in write_all(sys.argv[1]).items():
        print(f"{key}: {path} ({os.path.getsize(path)} bytes)")
