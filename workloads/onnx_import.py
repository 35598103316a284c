"""ONNX models in: ``workload.model: path/to/model.onnx`` (optional extra ``redysim[onnx]``).

The file is converted by ``onnx2torch`` into a torch.fx GraphModule and then follows the
same path as every other model (torch.fx trace, BatchNorm folding, mapping). Two small
normalizations make common exporter output convertible and traceable:

* on the ONNX graph: ``Identity`` nodes that only alias an initializer (the TorchScript
  exporter emits them for shared constants) become initializers; ``ReduceMean`` over the
  two spatial axes with ``keepdims=1`` becomes ``GlobalAveragePool``; files of an opset
  newer than 17 (the default exporter of torch ≥ 2.9 writes 18) are first converted down
  to opset 17 by ``onnx.version_converter``, and ``Reshape``'s ``allowzero=1`` is dropped
  when the target shape has no 0 (where it changes nothing);
* on the converted module: onnx2torch's own modules for ``Add``, global average pooling,
  ``Concat``, ``Clip`` (0..6 or 0..∞) and a ``Reshape`` to (N, -1) are replaced by the
  torch operations the graph builder knows (``operator.add``, ``adaptive_avg_pool2d(·,
  1)``, ``torch.cat``, ``relu6``/``relu``, ``flatten``).

Anything else that onnx2torch produces is reported by the graph builder as an unsupported
operation, naming the ONNX node.
"""

from __future__ import annotations

import copy
import operator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from workloads.errors import WorkloadError

__all__ = ["load_onnx"]

_MISSING = ("ONNX models need the optional packages onnx and onnx2torch: "
            "pip install 'redysim[onnx]' (or pip install onnx onnx2torch)")


#: newest opset onnx2torch converts reliably; newer files are converted down to it first
OPSET = 17


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
               default=0)


def _normalize_onnx(model: Any) -> Any:
    """Opset ≤ 17; initializer aliases → initializers; spatial ReduceMean →
    GlobalAveragePool; ``allowzero`` dropped from Reshapes whose target shape has no 0."""
    import onnx
    from onnx import helper, numpy_helper, version_converter

    if _opset(model) > OPSET:
        try:
            model = version_converter.convert_version(model, OPSET)
        except Exception:  # noqa: BLE001 - keep the original, onnx2torch will say what fails
            pass
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consts: dict[str, Any] = {}
    for n in g.node:  # Constant nodes feeding ReduceMean's axes input (opset 18)
        if n.op_type == "Constant" and n.attribute:
            consts[n.output[0]] = n.attribute[0]
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input and n.input[0] in inits:
            t = copy.deepcopy(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
            inits[t.name] = t
            continue
        if n.op_type == "ReduceMean":
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            axes = attrs.get("axes")
            if axes is None and len(n.input) > 1:
                src = n.input[1]
                if src in inits:
                    axes = numpy_helper.to_array(inits[src]).tolist()
                elif src in consts:
                    axes = numpy_helper.to_array(consts[src].t).tolist()
            if (axes is not None and sorted(int(a) % 4 for a in axes) == [2, 3]
                    and attrs.get("keepdims", 1) == 1):
                keep.append(helper.make_node("GlobalAveragePool", [n.input[0]], list(n.output),
                                             name=n.name))
                continue
        if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] in inits:
            if 0 not in numpy_helper.to_array(inits[n.input[1]]).tolist():
                for a in [a for a in n.attribute if a.name == "allowzero"]:
                    n.attribute.remove(a)
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    try:
        onnx.checker.check_model(model)
    except Exception:  # noqa: BLE001 - onnx2torch reports real problems itself
        pass
    return model


def _replace_onnx_modules(gm: fx.GraphModule) -> fx.GraphModule:
    """Replace onnx2torch modules with the torch functions the graph builder supports."""
    from onnx2torch.node_converters.binary_math_operations import OnnxBinaryMathOperation

    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        m = modules[node.target]
        kind = type(m).__name__
        new: tuple[Any, tuple, dict] | None = None
        if isinstance(m, OnnxBinaryMathOperation) and m.math_op_function is torch.add \
                and m.broadcast is None:
            new = (operator.add, tuple(node.args), {})
        elif kind.startswith("OnnxGlobalAveragePool"):
            new = (F.adaptive_avg_pool2d, (node.args[0], 1), {})
        elif kind == "OnnxReshape" and len(node.args) == 2 \
                and getattr(node.args[1], "op", None) == "get_attr":
            target = gm
            for part in str(node.args[1].target).split("."):
                target = getattr(target, part)
            shape = torch.as_tensor(target).reshape(-1).tolist()
            if len(shape) == 2 and (shape[1] == -1 or shape[0] in (-1, 0, 1)):
                new = (torch.flatten, (node.args[0], 1), {})
        elif kind == "OnnxConcat":
            new = (torch.cat, (list(node.args),), {"dim": int(m.axis)})
        elif kind in ("OnnxClip", "OnnxClipStatic") or kind.startswith("OnnxClip"):
            lo, hi = getattr(m, "min_val", None), getattr(m, "max_val", None)
            lo = float(lo) if lo is not None else None
            hi = float(hi) if hi is not None else None
            if lo == 0.0 and hi == 6.0:
                new = (F.relu6, (node.args[0],), {})
            elif lo == 0.0 and hi is None:
                new = (F.relu, (node.args[0],), {})
        if new is None:
            continue
        with gm.graph.inserting_after(node):
            repl = gm.graph.call_function(new[0], new[1], new[2])
        node.replace_all_uses_with(repl)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm


def _input_shape(model: Any) -> tuple[int, ...] | None:
    """(C, H, W) of the graph's single input when static, else None."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        return None
    dims = inputs[0].type.tensor_type.shape.dim
    vals = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(vals) != 4 or any(v is None or v <= 0 for v in vals[1:]):
        return None
    return tuple(int(v) for v in vals[1:])  # type: ignore[misc]


def load_onnx(path: Path) -> tuple[nn.Module, tuple[int, ...] | None]:
    """Convert an ONNX file into a torch module; returns (module, input shape or None)."""
    try:
        import onnx
        from onnx2torch import convert
    except ImportError:
        raise WorkloadError(f"workload.model: {path}: {_MISSING}") from None
    if not path.is_file():
        raise WorkloadError(f"workload.model: ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse error, one line
        raise WorkloadError(f"workload.model: {path} is not a readable ONNX file "
                            f"({type(e).__name__}: {e})") from None
    shape = _input_shape(model)
    try:
        gm = convert(_normalize_onnx(model))
    except Exception as e:  # noqa: BLE001 - onnx2torch raises many types
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WorkloadError(f"workload.model: onnx2torch cannot convert {path} "
                            f"({type(e).__name__}: {msg})") from None
    return _replace_onnx_modules(gm).eval(), shape
