"""Freeze a part to a constant-only TensorFlow graph, and lower the few ops that an
export target lacks into plain arithmetic.

Freezing matters for correctness: a TFLite model that still holds resource variables
returns all-NaN under XNNPACK without raising. Lowering rewrites, in the frozen
``GraphDef``, ops that tf2onnx converts badly or TFLite built-ins lack, for the static
square matrices and main diagonals that TFP's ``FillScaleTriL`` produces. Each target
lowers only what it needs (:data:`ONNX_LOWERED`, :data:`TFLITE_LOWERED`):

- ``MatrixDiagPartV3`` (no TFLite built-in; tf2onnx emits a ``Loop``): ``sum(x * eye, -1)``;
- ``MatrixSetDiagV3`` (tf2onnx emits a ``Loop`` with a ``com.microsoft`` op):
  ``x * (1 - eye) + d[..., None] * eye``;
- ``MatrixBandPart`` with constant bands (tf2onnx emits a ``Loop``): ``x * mask``;
- ``Log1p`` (no tf2onnx handler): ``log(1 + x)``, with Kahan's correction
  ``log(u) * x / (u - 1)``, ``u = 1 + x``, for ``|x| < 0.5``;
- ``Expm1`` (no tf2onnx handler): ``exp(x) - 1``, with Kahan's correction
  ``(u - 1) * x / log(u)``, ``u = exp(x)``, for ``|x| < 0.5``;
- ``Softplus`` (TFLite lowers it to ``log(1 + exp(x))``, which is Inf above 88):
  ``max(x, 0) + log(1 + exp(-|x|))``, exact to float32 rounding in absolute terms.

The masks are exact for finite inputs (a masked Inf would become NaN).

Example:
    >>> import vaezoo
    >>> from vaezoo.export.parts import model_parts
    >>> part = model_parts(vaezoo.create_model("vae_tril", hidden_units=(8,), latent_dim=2))["encoder"]
    >>> graph = freeze(part).lowered(TFLITE_LOWERED)
    >>> graph.output_keys, any(n.op == "MatrixDiagPartV3" for n in graph.graph_def.node)
    (['loc', 'scale_tril'], False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection

import numpy as np
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)
from vaezoo.export.manifest import TensorInfo
from vaezoo.export.parts import ExportPart

from vaezoo._tf import tf

NodeDef = tf.compat.v1.NodeDef
AttrValue = tf.compat.v1.AttrValue


@dataclasses.dataclass(frozen=True)
class FrozenGraph:
    """A part as a variable-free ``GraphDef`` with named inputs and outputs.

    Attributes:
        graph_def: the frozen graph (lowered only by :meth:`lowered`).
        graph: the ``tf.Graph`` it was frozen from (for static shapes).
        input_tensors: graph tensor names of the inputs, in the part's input order.
        input_keys: the part's input names, aligned with ``input_tensors``.
        output_tensors: graph tensor names of the outputs.
        output_keys: the part's output names, aligned with ``output_tensors``.
        output_infos: name, shape (batch ``None``) and dtype of each output.
    """

    graph_def: tf.compat.v1.GraphDef
    graph: tf.Graph
    input_tensors: list[str]
    input_keys: list[str]
    output_tensors: list[str]
    output_keys: list[str]
    output_infos: list[TensorInfo]

    def lowered(self, ops: Collection[str]) -> FrozenGraph:
        """A copy whose graph has every op of ``ops`` (keys of :data:`LOWERINGS`) rewritten."""
        return dataclasses.replace(self, graph_def=lower(self.graph_def, self.graph, ops))

    def concrete_function(self) -> tf.types.experimental.ConcreteFunction:
        """The graph as a concrete function of its inputs, returning a dict of outputs."""
        graph_def = self.graph_def

        def import_graph():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(import_graph, [])
        element = wrapped.graph.as_graph_element
        return wrapped.prune(
            [element(t) for t in self.input_tensors],
            {k: element(t) for k, t in zip(self.output_keys, self.output_tensors)},
        )


class _Builder:
    """Appends nodes that replace one node of a ``GraphDef``; the last one takes its name."""

    def __init__(self, node: NodeDef, dtype: int) -> None:
        self.node = node
        self.dtype = dtype
        self.nodes: list[NodeDef] = []

    def op(self, op: str, *inputs: str, name: str | None = None, **attrs: AttrValue) -> str:
        node = NodeDef(name=name or f"{self.node.name}/lowered/{len(self.nodes)}_{op}", op=op, input=list(inputs))
        node.attr["T"].CopyFrom(AttrValue(type=self.dtype))
        for key, value in attrs.items():
            node.attr[key].CopyFrom(value)
        self.nodes.append(node)
        return node.name

    def const(self, value: np.ndarray | float, dtype: tf.DType | None = None) -> str:
        dtype = dtype or tf.as_dtype(self.dtype)
        node = NodeDef(name=f"{self.node.name}/lowered/{len(self.nodes)}_Const", op="Const")
        node.attr["dtype"].CopyFrom(AttrValue(type=dtype.as_datatype_enum))
        node.attr["value"].CopyFrom(AttrValue(tensor=tf.make_tensor_proto(value, dtype)))
        self.nodes.append(node)
        return node.name

    def finish(self, op: str, *inputs: str, **attrs: AttrValue) -> list[NodeDef]:
        controls = [i for i in self.node.input if i.startswith("^")]
        self.op(op, *inputs, *controls, name=self.node.name, **attrs)
        return self.nodes


def _data_inputs(node: NodeDef) -> list[str]:
    return [i for i in node.input if not i.startswith("^")]


def _log1p(b: _Builder, x: str) -> str:
    """log(1 + x), with Kahan's correction ``log(u) * x / (u - 1)`` for ``|x| < 0.5``."""
    one = b.const(1.0)
    u = b.op("AddV2", x, one)
    direct = b.op("Log", u)
    near = b.op("RealDiv", b.op("Mul", direct, x), b.op("Sub", u, one))
    return _near_zero(b, x, u, near, direct)


def _expm1(b: _Builder, x: str) -> str:
    """exp(x) - 1, with Kahan's correction ``(u - 1) * x / log(u)`` for ``|x| < 0.5``."""
    u = b.op("Exp", x)
    direct = b.op("Sub", u, b.const(1.0))
    near = b.op("RealDiv", b.op("Mul", direct, x), b.op("Log", u))
    return _near_zero(b, x, u, near, direct)


def _near_zero(b: _Builder, x: str, u: str, near: str, direct: str) -> str:
    """``near`` for ``|x| < 0.5`` (``x`` itself where ``u == 1``), else ``direct``."""
    exact = b.op("Equal", u, b.const(1.0), incompatible_shape_error=AttrValue(b=True))
    near = b.op("SelectV2", exact, x, near)
    return b.op("SelectV2", b.op("Less", b.op("Abs", x), b.const(0.5)), near, direct)


def _softplus(b: _Builder, x: str) -> str:
    """max(x, 0) + log(1 + exp(-|x|)): finite for every finite x, unlike TFLite's own
    lowering log(1 + exp(x)); the tail is below 0.7, so plain log(1 + .) is accurate to
    float32 rounding in absolute terms."""
    tail = b.op("Log", b.op("AddV2", b.op("Exp", b.op("Neg", b.op("Abs", x))), b.const(1.0)))
    return b.op("AddV2", b.op("Maximum", x, b.const(0.0)), tail)


def _elementwise(function: Callable[[_Builder, str], str]) -> Callable[[NodeDef, tf.Graph], list[NodeDef]]:
    def rewrite(node: NodeDef, graph: tf.Graph) -> list[NodeDef]:
        b = _Builder(node, node.attr["T"].type)
        (x,) = _data_inputs(node)
        return b.finish("Identity", function(b, x))

    return rewrite


def _tensor(graph: tf.Graph, name: str) -> tf.Tensor:
    return graph.get_tensor_by_name(name if ":" in name else f"{name}:0")


def _square_size(node: NodeDef, graph: tf.Graph, matrix: str, k: str | None = None) -> int:
    """The static size of the square matrices ``matrix``; ``k``, if given, must be 0."""
    shape = _tensor(graph, matrix).shape
    k_value = 0 if k is None else tf.get_static_value(_tensor(graph, k))
    if shape.rank is None or shape.rank < 2 or shape[-1] is None or shape[-1] != shape[-2] or (
        k_value is None or np.any(k_value != 0)
    ):
        raise NotImplementedError(
            f"cannot export {node.op} {node.name!r}: it is lowered only for the main diagonal of "
            f"square matrices of static size, got shape {shape} and k={k_value}"
        )
    return int(shape[-1])


def _diag_part(node: NodeDef, graph: tf.Graph) -> list[NodeDef]:
    """``MatrixDiagPartV3(x, k=0)`` as ``sum(x * eye, -1)``."""
    x, k, _ = _data_inputs(node)
    b = _Builder(node, node.attr["T"].type)
    eye = b.const(np.eye(_square_size(node, graph, x, k)))
    int32 = AttrValue(type=tf.int32.as_datatype_enum)
    return b.finish("Sum", b.op("Mul", x, eye), b.const(-1, tf.int32), Tidx=int32, keep_dims=AttrValue(b=False))


def _set_diag(node: NodeDef, graph: tf.Graph) -> list[NodeDef]:
    """``MatrixSetDiagV3(x, d, k=0)`` as ``x * (1 - eye) + d[..., None] * eye``."""
    x, diag, k = _data_inputs(node)
    size = _square_size(node, graph, x, k)
    b = _Builder(node, node.attr["T"].type)
    kept = b.op("Mul", x, b.const(1.0 - np.eye(size)))
    column = b.op("ExpandDims", diag, b.const(-1, tf.int32), Tdim=AttrValue(type=tf.int32.as_datatype_enum))
    return b.finish("AddV2", kept, b.op("Mul", column, b.const(np.eye(size))))


def _band_part(node: NodeDef, graph: tf.Graph) -> list[NodeDef]:
    """``MatrixBandPart(x, lower, upper)`` with constant bands as ``x * mask``."""
    x, lower, upper = _data_inputs(node)
    size = _square_size(node, graph, x)
    lower_v, upper_v = (tf.get_static_value(_tensor(graph, t)) for t in (lower, upper))
    if lower_v is None or upper_v is None:
        raise NotImplementedError(f"cannot export MatrixBandPart {node.name!r} with bands computed at run time")
    i, j = np.indices((size, size))
    mask = ((lower_v < 0) | (i - j <= lower_v)) & ((upper_v < 0) | (j - i <= upper_v))
    b = _Builder(node, node.attr["T"].type)
    return b.finish("Mul", x, b.const(mask.astype(np.float64)))


LOWERINGS: dict[str, Callable[[NodeDef, tf.Graph], list[NodeDef]]] = {
    "MatrixDiagPartV3": _diag_part,
    "MatrixSetDiagV3": _set_diag,
    "MatrixBandPart": _band_part,
    "Log1p": _elementwise(_log1p),
    "Expm1": _elementwise(_expm1),
    "Softplus": _elementwise(_softplus),
}


ONNX_LOWERED = ("MatrixDiagPartV3", "MatrixSetDiagV3", "MatrixBandPart", "Log1p", "Expm1")
TFLITE_LOWERED = ("MatrixDiagPartV3", "Softplus")


def lower(graph_def: tf.compat.v1.GraphDef, graph: tf.Graph, ops: Collection[str]) -> tf.compat.v1.GraphDef:
    """Return a copy of ``graph_def`` with every op of ``ops`` rewritten by :data:`LOWERINGS`.

    ``graph`` is the ``tf.Graph`` that ``graph_def`` came from (for static shapes).
    """
    for function in graph_def.library.function:
        found = {n.op for n in function.node_def} & set(ops)
        if found:
            raise NotImplementedError(f"ops {sorted(found)} inside graph function {function.signature.name!r}")
    lowered = tf.compat.v1.GraphDef()
    lowered.versions.CopyFrom(graph_def.versions)
    lowered.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        lowered.node.extend(LOWERINGS[node.op](node, graph) if node.op in ops else [node])
    return lowered


def freeze(part: ExportPart) -> FrozenGraph:
    """Trace ``part`` and fold its variables into constants."""
    traced = part.traced()
    if not isinstance(traced.structured_outputs, dict):
        raise TypeError(
            f"part {part.name!r} must return a dict of named tensors, got {type(traced.structured_outputs).__name__}"
        )
    keys = sorted(traced.structured_outputs)  # the order of tf.nest.flatten, hence of .outputs
    frozen = convert_variables_to_constants_v2(traced)
    graph_def = frozen.graph.as_graph_def()
    remaining = {n.op for n in graph_def.node} & {"VarHandleOp", "ReadVariableOp", "VariableV2"}
    if remaining or len(frozen.outputs) != len(keys):
        raise RuntimeError(f"part {part.name!r} did not freeze cleanly (variable ops left: {sorted(remaining)})")
    return FrozenGraph(
        graph_def=graph_def,
        graph=frozen.graph,
        input_tensors=[t.name for t in frozen.inputs],
        input_keys=[t.name for t in part.inputs],
        output_tensors=[t.name for t in frozen.outputs],
        output_keys=keys,
        output_infos=[TensorInfo(k, tuple(t.shape.as_list()), t.dtype.name) for k, t in zip(keys, frozen.outputs)],
    )
