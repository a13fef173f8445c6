"""Convert a frozen part to ONNX or TFLite bytes at a given precision.

Both converters take the same :class:`~vaezoo.export.lowering.FrozenGraph` (each lowers
the ops its target lacks) and the same calibration feeds, and return the serialized model:

========= ======================================= ===========================================
precision ONNX                                    TFLite
========= ======================================= ===========================================
fp32      tf2onnx, opset :data:`ONNX_OPSET`       built-in ops only, no quantization
fp16      float16 weights, cast to float32 in     float16 weight quantization
          the graph (computation stays float32)   (``target_spec.supported_types``)
int8      dynamic quantization: int8 per-channel  integer post-training quantization of the
          weights, uint8 activations quantized    weight layers (int8 per-channel weights, int8
          per call (``quantize_dynamic``)         activations calibrated on ``calibration``);
                                                  head arithmetic and I/O stay float32
========= ======================================= ===========================================

Example:
    >>> import vaezoo
    >>> from vaezoo.export.parts import model_parts
    >>> from vaezoo.export.lowering import freeze
    >>> graph = freeze(model_parts(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2))["decoder"])
    >>> to_onnx(graph, "fp32")[:2], len(to_tflite(graph, "fp32")) > 0
    (b'\\x08\\x08', True)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

import numpy as np
import onnx
import tf2onnx
from onnx import numpy_helper
from tf2onnx.onnx_opset.controlflow import Select
from vaezoo.export.lowering import ONNX_LOWERED, TFLITE_LOWERED, FrozenGraph

from vaezoo._tf import tf

ONNX_OPSET = 17
FP16_MIN_ELEMENTS = 16
"""ONNX fp16 stores float initializers with at least this many elements (weights and
biases) as float16; scalar and tiny constants stay float32."""

CALIBRATION_EXAMPLES = 1000
"""At most this many examples calibrate TFLite int8 quantization."""

TFLITE_FLOAT_OPS = (
    # arithmetic of the distribution heads
    "ABS", "ADD", "ADD_N", "CUMSUM", "DIV", "EQUAL", "EXP", "FLOOR", "GREATER", "GREATER_EQUAL", "LESS",
    "LESS_EQUAL", "LOG", "LOGISTIC", "LOG_SOFTMAX", "MATRIX_DIAG", "MATRIX_SET_DIAG", "MAXIMUM", "MEAN",
    "MINIMUM", "MUL", "NEG", "NOT_EQUAL", "POW", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "RELU", "RSQRT", "SELECT",
    "SELECT_V2", "SOFTMAX", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "SUB", "SUM", "TANH",
    # data movement: int8 forces one scale on input and output, which would tie the
    # scale of a layer's output to the range of a slice of it
    "BROADCAST_TO", "CONCATENATION", "EXPAND_DIMS", "GATHER", "PACK", "RESHAPE", "REVERSE_V2", "SLICE", "SPLIT",
    "SPLIT_V", "SQUEEZE", "STRIDED_SLICE", "TILE", "TRANSPOSE", "UNPACK",
)
"""TFLite int8 keeps these ops in float32, so that only the weight layers
(FULLY_CONNECTED, CONV_2D, TRANSPOSE_CONV) and their activations are quantized: the
distribution heads' arithmetic (softplus, sigmoid, the continuous Bernoulli mean) is
wrecked by 8-bit intermediates. The calibration ranges of the tensors that only these
ops touch are dropped before quantization (:func:`_quantized_region_statistics`)."""

Feeds = dict[str, np.ndarray]


def _select_as_where(ctx, node, name, args) -> None:
    """tf2onnx turns ``tf.where`` into ``c * a + (1 - c) * b`` unless told that NaN or Inf
    may occur, which makes a NaN or Inf in the branch not taken leak into the result
    (``0 * inf = nan``); TFP relies on ``tf.where`` to discard such values. Always emit
    ONNX ``Where``."""
    node.set_attr("handles_nan", True)
    Select.version_9(ctx, node)


def _onnx_fp32(graph: FrozenGraph) -> onnx.ModelProto:
    names = dict(zip(graph.input_tensors, graph.input_keys))
    names.update(zip(graph.output_tensors, graph.output_keys))
    graph = graph.lowered(ONNX_LOWERED)
    model, _ = tf2onnx.convert.from_graph_def(
        graph.graph_def,
        input_names=graph.input_tensors,
        output_names=graph.output_tensors,
        opset=ONNX_OPSET,
        custom_op_handlers={op: (_select_as_where, []) for op in ("Select", "SelectV2")},
        tensors_to_rename=names,
    )
    found = [o.name for o in model.graph.output]
    if found != graph.output_keys:
        raise RuntimeError(f"tf2onnx named the outputs {found}, expected {graph.output_keys}")
    return model


def _float16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store large float32 initializers as float16, each followed by a Cast to float32."""
    limit = float(np.finfo(np.float16).max)
    casts = []
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or np.prod(tensor.dims) < FP16_MIN_ELEMENTS:
            continue
        values = numpy_helper.to_array(tensor)
        if np.abs(values).max() > limit:
            raise ValueError(f"initializer {tensor.name!r} has values beyond the float16 range (|v| > {limit})")
        name = tensor.name
        tensor.CopyFrom(numpy_helper.from_array(values.astype(np.float16), f"{name}__fp16"))
        casts.append(onnx.helper.make_node("Cast", [tensor.name], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _onnx_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(model, source)
        quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8)
        return onnx.load(target)


def to_onnx(graph: FrozenGraph, precision: str, calibration: Feeds | None = None) -> bytes:
    """Serialized ONNX model of ``graph`` (``calibration`` is unused: ONNX int8 is dynamic)."""
    model = _onnx_fp32(graph)
    if precision == "fp16":
        model = _float16_weights(model)
    elif precision == "int8":
        model = _onnx_int8(model)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _representative(graph: FrozenGraph, calibration: Feeds) -> Callable[[], Iterator[list[np.ndarray]]]:
    count = min(CALIBRATION_EXAMPLES, *(len(calibration[k]) for k in graph.input_keys))

    def examples():
        for i in range(count):
            yield [calibration[k][i : i + 1] for k in graph.input_keys]

    return examples


def _quantized_region_statistics(calibrated: bytes) -> bytes:
    """The calibrated TFLite model with calibration ranges only on the tensors that a
    quantized op (one not in :data:`TFLITE_FLOAT_OPS`) reads or writes.

    The MLIR quantizer gives "same-scale" ops (slices, reshapes, selects) one scale for
    input and output and propagates it backwards even through ops it then keeps in
    float, so a head tensor's range overrode the range of the weight layer that feeds
    it: the continuous Bernoulli mean's ``where(mask, logits, 1.0)`` (all 1.0 while the
    logits are near 0) gave the decoder's last convolution the range [0, 1], clipping
    every negative logit to 0, and the ``tril`` posterior's Cholesky slice gave the
    encoder's last layer its range, clipping ``loc``. Without ranges on the float region,
    each weight layer's output keeps its own calibrated range.
    """
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(calibrated, 0))
    float_ops = set(TFLITE_FLOAT_OPS)
    for subgraph in model.subgraphs:
        quantized = set()
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if names[max(code.builtinCode, code.deprecatedBuiltinCode)] not in float_ops:
                quantized.update(i for i in (*op.inputs, *op.outputs) if i >= 0)
        for index, tensor in enumerate(subgraph.tensors):
            if index not in quantized:
                tensor.quantization = None
    builder = flatbuffers.Builder(len(calibrated))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tflite_int8(converter: tf.lite.TFLiteConverter, graph: FrozenGraph, calibration: Feeds) -> bytes:
    """Calibrate on ``calibration``, keep the ranges of the quantized region only, and
    quantize every op but :data:`TFLITE_FLOAT_OPS` (int8 per-channel weights, float I/O).

    These are the steps of ``tf.lite.experimental.QuantizationDebugger`` (a calibrate-only
    conversion, then ``mlir_quantize`` with denylisted ops), which has no hook between
    calibration and quantization; it also built an instrumented model that was thrown away.
    """
    from tensorflow.lite.python.convert import mlir_quantize

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(graph, calibration)
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # the calibrated float model, quantized below
    calibrated = _quantized_region_statistics(converter.convert())
    return mlir_quantize(calibrated, disable_per_channel=False, denylisted_ops=list(TFLITE_FLOAT_OPS))


def to_tflite(graph: FrozenGraph, precision: str, calibration: Feeds | None = None) -> bytes:
    """Serialized TFLite model of ``graph`` with TFLite built-in ops only."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph.lowered(TFLITE_LOWERED).concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if calibration is None:
            raise ValueError("TFLite int8 quantization needs calibration feeds")
        return _tflite_int8(converter, graph, calibration)
    return converter.convert()


CONVERTERS: dict[str, Callable[[FrozenGraph, str, Feeds | None], bytes]] = {"onnx": to_onnx, "tflite": to_tflite}
