"""Trace a CNN with torch.fx into the workload dataflow graph.

The contract (node kinds and attribute names) is in docs/interfaces.md, section "Workload
graph". In short: the model is put in eval mode, traced with torch.fx, BatchNorm is folded
into the preceding conv/linear, shapes are propagated with one forward pass of a batch of
one, and every tensor-producing fx node becomes either a graph node (``input, conv,
linear, maxpool, avgpool, add, concat, flatten, output``), a fused attribute of its
producer (ReLU/ReLU6 -> ``act``; a BatchNorm that cannot be folded -> ``bn``), or is elided
(Dropout, Identity, shape glue, identity adaptive pools) with its edges re-wired.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from workloads.errors import WorkloadError

__all__ = [
    "KINDS",
    "SUPPORTED_OPS",
    "TracedWorkload",
    "count_kinds",
    "fold_batchnorm",
    "trace_model",
]

KINDS = ("input", "conv", "linear", "maxpool", "avgpool", "add", "concat", "flatten", "output")

SUPPORTED_OPS = (
    "nn.Conv2d, nn.Linear, max/avg pool 2d (module or functional), adaptive avg/max pool 2d "
    "(to 1x1, to an integer divisor of the input size, or identity), add of two tensors "
    "(+, +=, torch.add, Tensor.add), torch.cat along channels, flatten/view/reshape to "
    "(N, -1), ReLU/ReLU6 (module or functional, fused into the producer), BatchNorm, "
    "Dropout, Identity, contiguous/clone, and non-tensor shape glue (x.size(), getattr)"
)


@dataclass
class TracedWorkload:
    """A traced network: runnable GraphModule (eval, BN folded) and its dataflow graph."""

    module: fx.GraphModule
    graph: nx.DiGraph
    name: str
    input_shape: tuple[int, ...]

    def weight_layers(self) -> list[str]:
        """Names of the conv/linear nodes in execution order."""
        nodes = [n for n, d in self.graph.nodes(data=True) if d["kind"] in ("conv", "linear")]
        return sorted(nodes, key=lambda n: self.graph.nodes[n]["order"])


class _Tracer(fx.Tracer):
    """fx tracer that can treat extra module types as leaves."""

    def __init__(self, leaf_modules: Sequence[type[nn.Module]] = ()) -> None:
        super().__init__()
        self._leaf_types = tuple(leaf_modules)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self._leaf_types and isinstance(m, self._leaf_types):
            return True
        return super().is_leaf_module(m, module_qualified_name)


# ----------------------------------------------------------------------------- helpers


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    return (int(v[0]), int(v[0])) if len(v) == 1 else (int(v[0]), int(v[1]))


def _meta(n: Any) -> Any:
    return n.meta.get("tensor_meta") if isinstance(n, fx.Node) else None


def _is_tensor(n: Any) -> bool:
    return isinstance(_meta(n), TensorMetadata)


def _shape(n: fx.Node) -> tuple[int, ...]:
    """Shape of a node's tensor output without the batch dimension."""
    return tuple(int(s) for s in _meta(n).shape[1:])


def _data_inputs(n: fx.Node) -> list[fx.Node]:
    """Tensor-valued fx nodes among a node's arguments, in argument order."""
    found: list[fx.Node] = []
    fx.node.map_arg((n.args, n.kwargs), lambda a: found.append(a) or a)
    return [a for a in found if _is_tensor(a)]


def _data_users(n: fx.Node) -> list[fx.Node]:
    return [u for u in n.users if u.op == "output" or _meta(u) is not None]


def _bind(n: fx.Node, names: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Bind a call's positional and keyword arguments to parameter names."""
    out = dict(defaults)
    out.update(dict(zip(names, n.args, strict=False)))
    out.update(n.kwargs)
    return out


def _describe(n: fx.Node, modules: dict[str, nn.Module]) -> str:
    if n.op == "call_module":
        return f"module {type(modules[n.target]).__name__} ('{n.target}')"
    if n.op == "call_method":
        return f"method Tensor.{n.target}"
    if n.op == "call_function":
        mod = getattr(n.target, "__module__", None) or ""
        fname = getattr(n.target, "__name__", repr(n.target))
        return f"function {mod + '.' if mod else ''}{fname}"
    return f"{n.op} {n.target}"


def _set_submodule(root: nn.Module, qualname: str, new: nn.Module) -> None:
    parent, _, leaf = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


# ----------------------------------------------------------------------- BN folding


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every eval-mode BatchNorm that directly follows a conv/linear into it (in place).

    A BN is folded only when its producer is a Conv2d (Linear for BatchNorm1d) whose
    output feeds nothing else and whose module is called once. The fused modules are new
    objects set into ``gm``; the traced model's own modules are not modified.
    """
    modules = dict(gm.named_modules())
    calls = Counter(n.target for n in gm.graph.nodes if n.op == "call_module")
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], _BatchNorm):
            continue
        bn = modules[node.target]
        prev = node.args[0] if node.args else None
        if (
            not isinstance(prev, fx.Node)
            or prev.op != "call_module"
            or len(prev.users) != 1
            or calls[prev.target] != 1
            or calls[node.target] != 1
            or not bn.track_running_stats
            or bn.running_mean is None
        ):
            continue
        first = modules[prev.target]
        if isinstance(first, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            fused = fuse_conv_bn_eval(first.eval(), bn.eval())
        elif isinstance(first, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused = fuse_linear_bn_eval(first.eval(), bn.eval())
        else:
            continue
        _set_submodule(gm, prev.target, fused)
        modules[prev.target] = fused
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm


# ------------------------------------------------------------------ op classification

_ADD_FUNCS = {operator.add, operator.iadd, torch.add}
_CAT_FUNCS = {torch.cat, torch.concat, torch.concatenate}
_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, F.relu_}
_DROPOUT_FUNCS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout}
_ELIDE_METHODS = {"contiguous", "clone", "detach"}
_MAXPOOL_ARGS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")
_AVGPOOL_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode")


def _classify(n: fx.Node, modules: dict[str, nn.Module]) -> tuple[str | None, dict[str, Any]]:
    """Map an fx node to an op category and its parameters; (None, {}) if unsupported."""
    if n.op == "call_module":
        m = modules[n.target]
        if isinstance(m, nn.Conv2d):
            return "conv", {"module": m}
        if isinstance(m, nn.Linear):
            return "linear", {"module": m}
        if isinstance(m, nn.MaxPool2d):
            return "maxpool", {
                "kernel": _pair(m.kernel_size),
                "stride": _pair(m.stride or m.kernel_size),
                "padding": _pair(m.padding),
                "dilation": _pair(m.dilation),
            }
        if isinstance(m, nn.AvgPool2d):
            return "avgpool", {
                "kernel": _pair(m.kernel_size),
                "stride": _pair(m.stride or m.kernel_size),
                "padding": _pair(m.padding),
                "dilation": (1, 1),
            }
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return "adaptive", {"pool": "avgpool"}
        if isinstance(m, nn.AdaptiveMaxPool2d):
            return "adaptive", {"pool": "maxpool"}
        if isinstance(m, nn.ReLU):
            return "act", {"act": "relu"}
        if isinstance(m, nn.Hardtanh) and m.min_val == 0.0 and m.max_val == 6.0:  # ReLU6
            return "act", {"act": "relu6"}
        if isinstance(m, _BatchNorm):
            return "bn", {"module": n.target}
        if isinstance(m, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.Dropout3d | nn.Identity):
            return "elide", {}
        if isinstance(m, nn.AlphaDropout | nn.FeatureAlphaDropout):
            return "elide", {}
        if isinstance(m, nn.Flatten):
            return "flatten", {}
        return None, {}
    if n.op == "call_function":
        t = n.target
        if t in _ADD_FUNCS:
            return "add", {}
        if t in _CAT_FUNCS:
            return "concat", {"dim": _bind(n, ("tensors", "dim"), {"dim": 0})["dim"]}
        if t in _RELU_FUNCS:
            return "act", {"act": "relu"}
        if t is F.relu6:
            return "act", {"act": "relu6"}
        if t is F.hardtanh:
            a = _bind(n, ("input", "min_val", "max_val"), {"min_val": -1.0, "max_val": 1.0})
            if a["min_val"] == 0.0 and a["max_val"] == 6.0:
                return "act", {"act": "relu6"}
            return None, {}
        if t in _DROPOUT_FUNCS:
            return "elide", {}
        if t in (torch.flatten, torch.reshape):
            return "flatten", {}
        if t is F.max_pool2d:
            a = _bind(n, _MAXPOOL_ARGS, {"stride": None, "padding": 0, "dilation": 1})
            return "maxpool", {
                "kernel": _pair(a["kernel_size"]),
                "stride": _pair(a["stride"] or a["kernel_size"]),
                "padding": _pair(a["padding"]),
                "dilation": _pair(a["dilation"]),
            }
        if t is F.avg_pool2d:
            a = _bind(n, _AVGPOOL_ARGS, {"stride": None, "padding": 0})
            return "avgpool", {
                "kernel": _pair(a["kernel_size"]),
                "stride": _pair(a["stride"] or a["kernel_size"]),
                "padding": _pair(a["padding"]),
                "dilation": (1, 1),
            }
        if t is F.adaptive_avg_pool2d:
            return "adaptive", {"pool": "avgpool"}
        if t is F.adaptive_max_pool2d:
            return "adaptive", {"pool": "maxpool"}
        return None, {}
    if n.op == "call_method":
        t = n.target
        if t in ("add", "add_", "__add__", "__iadd__"):
            return "add", {}
        if t in ("relu", "relu_"):
            return "act", {"act": "relu"}
        if t in ("view", "reshape", "flatten"):
            return "flatten", {}
        if t in _ELIDE_METHODS:
            return "elide", {}
        return None, {}
    return None, {}


# ------------------------------------------------------------------------- the builder


class _Builder:
    """Builds the networkx dataflow graph from a shape-propagated GraphModule."""

    def __init__(self, gm: fx.GraphModule, name: str, input_shape: tuple[int, ...]) -> None:
        self.gm = gm
        self.name = name
        self.modules = dict(gm.named_modules())
        self.g = nx.DiGraph(name=name, input_shape=tuple(input_shape))
        self.rep: dict[fx.Node, str] = {}  # fx node -> graph node holding its value
        self.order = 0

    # -- errors
    def _unsupported(self, n: fx.Node, why: str = "") -> WorkloadError:
        what = _describe(n, self.modules)
        extra = f" ({why})" if why else ""
        return WorkloadError(
            f"model '{self.name}': unsupported operation {what} at fx node '{n.name}'{extra}. "
            f"Supported operations: {SUPPORTED_OPS}."
        )

    # -- graph construction
    def _add(self, n: fx.Node, kind: str, in_shape: tuple[int, ...], **attrs: Any) -> str:
        out_shape = _shape(n) if _is_tensor(n) else in_shape
        node_attrs: dict[str, Any] = {
            "kind": kind,
            "order": self.order,
            "module": None,
            "in_shape": in_shape,
            "out_shape": out_shape,
            "in_channels": in_shape[0] if in_shape else None,
            "out_channels": out_shape[0] if out_shape else None,
            "kernel": None,
            "stride": None,
            "padding": None,
            "dilation": None,
            "groups": None,
            "act": None,
            "bn": None,
            "macs": 0,
            "weights": 0,
            "signed_input": False,
        }
        node_attrs.update(attrs)
        self.order += 1
        self.g.add_node(n.name, **node_attrs)
        self.rep[n] = n.name
        return n.name

    def _src(self, n: fx.Node, d: fx.Node) -> str:
        if d not in self.rep:
            raise self._unsupported(n, f"its input '{d.name}' is not a supported tensor value")
        return self.rep[d]

    def _connect(self, n: fx.Node, inputs: Iterable[fx.Node]) -> None:
        for d in inputs:
            shape = _shape(d)
            numel = math.prod(shape)
            self.g.add_edge(self._src(n, d), n.name, shape=shape, numel=numel, bytes=numel)

    def _check_sole_consumer(self, n: fx.Node, src: fx.Node) -> str:
        """Walk back through elided nodes from ``src`` to its producer; each value on the
        way must feed only the next node (so fusing an activation/BN is exact)."""
        producer = self._src(n, src)
        cur, nxt = src, n
        while True:
            if _data_users(cur) != [nxt]:
                raise self._unsupported(
                    n,
                    f"its input '{cur.name}' also feeds other nodes, so it cannot be fused "
                    f"into producer '{producer}'",
                )
            if cur.name == producer:
                return producer
            ins = _data_inputs(cur)
            cur, nxt = ins[0], cur

    def build(self) -> nx.DiGraph:
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                shape = _shape(n)
                self._add(n, "input", shape)
                continue
            if n.op == "output":
                ins = _data_inputs(n)
                if len(ins) != 1:
                    raise WorkloadError(
                        f"model '{self.name}': the network must return exactly one tensor "
                        f"(got {len(ins)} tensor outputs)"
                    )
                self._add(n, "output", _shape(ins[0]))
                self.g.nodes[n.name]["out_shape"] = _shape(ins[0])
                self.g.nodes[n.name]["out_channels"] = _shape(ins[0])[0]
                self._connect(n, ins)
                continue
            if n.op == "get_attr":
                continue
            meta = _meta(n)
            if meta is None:
                continue  # non-tensor shape glue: x.size(0), getattr(x, "shape"), ...
            if not isinstance(meta, TensorMetadata):
                raise self._unsupported(n, "it returns several tensors")
            self._visit(n)
        self._signedness()
        return self.g

    def _visit(self, n: fx.Node) -> None:
        op, info = _classify(n, self.modules)
        data = _data_inputs(n)
        if op is None:
            raise self._unsupported(n)
        if op != "add" and op != "concat" and len(data) != 1:
            raise self._unsupported(n, f"expected one tensor input, got {len(data)}")
        if op == "elide":
            self.rep[n] = self._src(n, data[0])
            return
        if op in ("act", "bn"):
            producer = self._check_sole_consumer(n, data[0])
            attrs = self.g.nodes[producer]
            if op == "act":
                if attrs["kind"] == "input":
                    raise self._unsupported(n, "an activation applied to the network input")
                if attrs["act"] not in (None, info["act"]):
                    raise self._unsupported(
                        n, f"a second activation after '{attrs['act']}' on '{producer}'"
                    )
                attrs["act"] = info["act"]
            else:
                if attrs["act"] is not None or attrs["bn"] is not None:
                    raise self._unsupported(
                        n, f"a BatchNorm after an activation or BatchNorm on '{producer}'"
                    )
                attrs["bn"] = info["module"]
            self.rep[n] = producer
            return
        in_shape = _shape(data[0]) if data else ()
        out_shape = _shape(n)
        if op == "conv":
            self._conv(n, info["module"], in_shape, out_shape)
        elif op == "linear":
            m = info["module"]
            if len(in_shape) != 1:
                raise self._unsupported(n, f"Linear applied to a {in_shape} tensor")
            self._add(
                n, "linear", in_shape, module=n.target,
                in_channels=m.in_features, out_channels=m.out_features,
                kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                macs=m.in_features * m.out_features, weights=m.weight.numel(),
            )  # fmt: skip
            self._connect(n, data)
        elif op in ("maxpool", "avgpool"):
            self._pool(n, op, in_shape, info)
        elif op == "adaptive":
            if len(in_shape) != 3:
                raise self._unsupported(n, f"adaptive pool of a {in_shape} tensor")
            (h, w), (ho, wo) = in_shape[1:], out_shape[1:]
            if (h, w) == (ho, wo):
                self.rep[n] = self._src(n, data[0])
                return
            if h % ho or w % wo:
                raise self._unsupported(
                    n,
                    f"adaptive pool from {h}x{w} to {ho}x{wo} is not a plain pooling; "
                    "use an input size whose feature map is a multiple of the output size",
                )
            k = (h // ho, w // wo)
            self._pool(
                n, info["pool"], in_shape,
                {"kernel": k, "stride": k, "padding": (0, 0), "dilation": (1, 1)},
            )  # fmt: skip
        elif op == "add":
            plain = len(n.args) + len(n.kwargs) == 2 and set(n.kwargs) <= {"input", "other"}
            if len(data) != 2 or not plain:
                raise self._unsupported(n, "only the sum of two tensors is supported")
            if _shape(data[0]) != _shape(data[1]):
                raise self._unsupported(
                    n, f"broadcasting add {_shape(data[0])} + {_shape(data[1])}"
                )
            self._add(n, "add", in_shape)
            self._connect(n, data)
        elif op == "concat":
            rank = len(out_shape) + 1
            if info["dim"] not in (1, 1 - rank) or not data:
                raise self._unsupported(n, f"concatenation along dim {info['dim']}")
            self._add(n, "concat", in_shape)
            self._connect(n, data)
        elif op == "flatten":
            if out_shape == in_shape:
                self.rep[n] = self._src(n, data[0])
                return
            if len(out_shape) != 1 or math.prod(out_shape) != math.prod(in_shape):
                raise self._unsupported(n, f"reshape {in_shape} -> {out_shape}")
            self._add(n, "flatten", in_shape)
            self._connect(n, data)

    def _conv(
        self, n: fx.Node, m: nn.Conv2d, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
    ) -> None:
        kh, kw = _pair(m.kernel_size)
        dh, dw = _pair(m.dilation)
        if isinstance(m.padding, str):  # "same" / "valid"
            pad = ((kh - 1) * dh // 2, (kw - 1) * dw // 2) if m.padding == "same" else (0, 0)
        else:
            pad = _pair(m.padding)
        positions = out_shape[1] * out_shape[2]
        rows = (m.in_channels // m.groups) * kh * kw
        self._add(
            n, "conv", in_shape, module=n.target,
            in_channels=m.in_channels, out_channels=m.out_channels,
            kernel=(kh, kw), stride=_pair(m.stride), padding=pad, dilation=(dh, dw),
            groups=m.groups, macs=positions * m.out_channels * rows, weights=m.weight.numel(),
        )  # fmt: skip
        self._connect(n, _data_inputs(n))

    def _pool(self, n: fx.Node, kind: str, in_shape: tuple[int, ...], p: dict[str, Any]) -> None:
        if len(in_shape) != 3:
            raise self._unsupported(n, f"pooling of a {in_shape} tensor")
        self._add(
            n, kind, in_shape, kernel=p["kernel"], stride=p["stride"], padding=p["padding"],
            dilation=p["dilation"], groups=1,
        )  # fmt: skip
        self._connect(n, _data_inputs(n))

    def _signedness(self) -> None:
        """Set ``signed_input``: can the values entering this node be negative?"""
        out_signed: dict[str, bool] = {}
        for v in sorted(self.g.nodes, key=lambda x: self.g.nodes[x]["order"]):
            a = self.g.nodes[v]
            preds = list(self.g.predecessors(v))
            signed_in = True if a["kind"] == "input" else any(out_signed[u] for u in preds)
            a["signed_input"] = signed_in
            if a["kind"] in ("conv", "linear", "add"):
                signed = True
            else:  # input, pools, flatten, concat, output pass the sign through
                signed = signed_in
            if a["bn"] is not None:
                signed = True
            if a["act"] is not None:
                signed = False
            out_signed[v] = signed


# ------------------------------------------------------------------------------ entry


def trace_model(
    model: nn.Module,
    input_shape: Sequence[int],
    name: str,
    *,
    leaf_modules: Sequence[type[nn.Module]] = (),
    fold_bn: bool = True,
) -> TracedWorkload:
    """Trace ``model`` for an input of ``input_shape`` (C, H, W) into a TracedWorkload.

    The model is switched to eval mode. The returned GraphModule shares the model's
    unfolded modules; folded conv/linear modules are new objects. ``leaf_modules`` are
    extra module types fx must not trace into (they must still be supported ops).
    Raises WorkloadError for untraceable models and unsupported operations.
    """
    input_shape = tuple(int(s) for s in input_shape)
    model.eval()
    tracer = _Tracer(leaf_modules)
    try:
        fx_graph = tracer.trace(model)
    except Exception as e:  # fx raises many exception types for dynamic control flow
        raise WorkloadError(
            f"model '{name}': torch.fx could not trace it ({type(e).__name__}: {e})"
        ) from e
    gm = fx.GraphModule(tracer.root, fx_graph, type(model).__name__)
    gm.eval()
    if fold_bn:
        fold_batchnorm(gm)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    except Exception as e:
        raise WorkloadError(
            f"model '{name}': forward pass failed for input shape {input_shape} "
            f"({type(e).__name__}: {e})"
        ) from e
    graph = _Builder(gm, name, input_shape).build()
    return TracedWorkload(module=gm, graph=graph, name=name, input_shape=input_shape)


def count_kinds(graph: nx.DiGraph) -> dict[str, int]:
    """Number of nodes of each kind (only kinds present)."""
    return dict(Counter(d["kind"] for _, d in graph.nodes(data=True)))
