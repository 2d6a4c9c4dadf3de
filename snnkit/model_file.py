"""A torch ANN read from a file for conversion, without running code that the file holds.

Unpickling a file runs whatever code its author put in it, so no format is unpickled unless
the caller trusts the file (``trust_pickle``):

- ``torch.export`` programs (``torch.export.save``, ``.pt2``): the archive's JSON graph and
  raw tensor bytes are read directly (``torch.export.load`` would unpickle) and the chain of
  aten operators is rebuilt as an ``nn.Sequential`` of the layers :mod:`snnkit.ann` converts;
- TorchScript (``torch.jit.save`` of a scripted ``nn.Sequential``): TorchScript's own loader
  (which unpickles only tensors and plain values); the layers are rebuilt from their
  parameters, the file's code is never run;
- a state dict (``torch.save(model.state_dict())``) together with the model's definition, a
  class the user names (``package.module:Class`` or ``path/to/file.py:Class``): the
  weights are read with ``torch.load(weights_only=True)``;
- a whole pickled model (``torch.save(model)``) only with ``trust_pickle=True``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .ann import SUPPORTED, instead_of
from .errors import NetworkError

TRUST_HINT = ("save the model with torch.export.save (.pt2) or torch.jit.save(torch.jit.script("
              "model)), or save model.state_dict() and name its class with --model-class; "
              "or, if you trust the file, pass --trust-pickle (Python: trust_pickle=True)")
_DTYPES = {1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64,
           6: torch.float16, 7: torch.float32, 8: torch.float64, 12: torch.bool,
           13: torch.bfloat16}  # torch._export.serde.schema.ScalarType


def load_model(path, model_class: str | None = None, model_kwargs: dict | None = None,
               trust_pickle: bool = False) -> nn.Module:
    """The ANN in the file ``path`` (formats: the module docstring).

    Parameters
    ----------
    model_class : ``package.module:Class`` or ``file.py:Class``: the file is a state dict of
        this class (instantiated with ``model_kwargs``)
    trust_pickle : allow unpickling a whole model (runs the file's code)

    Raises
    ------
    NetworkError : the file is missing, damaged, of an unknown format, would need unpickling
        without ``trust_pickle``, or holds layers that cannot be rebuilt; the message says
        what to do
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise NetworkError(f"model: no such file {where!r}")
    if model_class is not None:
        return _from_state_dict(path, model_class, model_kwargs or {})
    names = _zip_names(path)
    if any(n.endswith("/models/model.json") for n in names):
        return _from_export(path, names)
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return _from_torchscript(path)
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:  # a whole model (or worse): classes to unpickle
        if not trust_pickle:
            raise NetworkError(f"model: {where!r} holds a pickled model: unpickling runs "
                               f"whatever code the file holds, so snnkit does not do it by "
                               f"default; {TRUST_HINT}") from e
        try:
            obj = torch.load(path, weights_only=False, map_location="cpu")
        except Exception as e2:  # noqa: BLE001 - unpickling raises anything
            raise NetworkError(f"model: cannot load {where!r} ({e2})") from e2
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise NetworkError(f"model: {where!r} is not a torch model file ({e})") from e
    if isinstance(obj, dict):
        raise NetworkError(f"model: {where!r} holds a state dict: give the model's class "
                           f"(--model-class package.module:Class or file.py:Class)")
    if not isinstance(obj, nn.Module):
        raise NetworkError(f"model: {where!r} holds a {type(obj).__name__}, not a model")
    return obj


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


# --------------------------------------------------------------------------- state dict


def _from_state_dict(path: Path, spec: str, kwargs: dict) -> nn.Module:
    cls = _class_of(spec)
    try:
        model = cls(**kwargs)
    except Exception as e:  # noqa: BLE001 - the user's constructor
        raise NetworkError(f"--model-class: {spec}(**{kwargs}) failed ({e})") from e
    if not isinstance(model, nn.Module):
        raise NetworkError(f"--model-class: {spec} is not a torch.nn.Module")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise NetworkError(f"model: {str(path)!r} is not a plain state dict (it would need "
                           f"unpickling classes: {e})") from e
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise NetworkError(f"model: {str(path)!r} is not a torch state dict ({e})") from e
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise NetworkError(f"model: {str(path)!r} holds a {type(state).__name__}, not a "
                           f"state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise NetworkError(f"model: {str(path)!r} does not fit {spec} ({e})") from e
    return model.eval()


def _class_of(spec: str):
    """``package.module:Class`` or ``path/to/file.py:Class``."""
    if ":" not in spec:
        raise NetworkError(f"--model-class: expected package.module:Class or file.py:Class, "
                           f"got {spec!r}")
    where, name = spec.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            file = Path(where)
            if not file.is_file():
                raise NetworkError(f"--model-class: no such file {where!r}")
            loader = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        return getattr(module, name)
    except NetworkError:
        raise
    except ModuleNotFoundError as e:
        hint = (f"; a file in this folder is given by its path: {where}.py:{name}"
                if Path(f"{where}.py").is_file() else "")
        raise NetworkError(f"--model-class: cannot import {spec!r} ({e}){hint}") from e
    except Exception as e:  # noqa: BLE001 - importing the user's code
        raise NetworkError(f"--model-class: cannot import {spec!r} ({e})") from e


# --------------------------------------------------------------------------- TorchScript


def _from_torchscript(path: Path) -> nn.Module:
    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - TorchScript's loader raises many types
        raise NetworkError(f"model: {str(path)!r} is not a loadable TorchScript file ({e})")
    return _rebuild_script(scripted, "model").eval()


def _rebuild_script(m, name: str) -> nn.Module:
    """A plain module with the parameters of the scripted one ``m`` (a Sequential of
    supported layers, nested Sequentials included)."""
    kind = getattr(m, "original_name", type(m).__name__)
    try:
        if kind == "Sequential":
            return nn.Sequential(*(_rebuild_script(c, f"{name}.{k}")
                                   for k, c in m.named_children()))
        layer = _SCRIPTED[kind](m)
    except KeyError:
        raise NetworkError(f"model: TorchScript layer {name} ({kind}) cannot be rebuilt "
                           f"(supported: Sequential, {', '.join(_SCRIPTED)}); export the "
                           f"model with torch.export (.pt2) or give its state dict and "
                           f"class") from None
    except (AttributeError, RuntimeError) as e:
        raise NetworkError(f"model: TorchScript layer {name} ({kind}) does not show its "
                           f"settings ({e}); script it with torch.jit.script rather than "
                           f"trace it") from e
    state = {k: v for k, v in m.state_dict().items()}
    layer.load_state_dict(state)
    return layer


_SCRIPTED = {
    "Linear": lambda m: nn.Linear(m.weight.shape[1], m.weight.shape[0], bias=m.bias is not None),
    "Conv2d": lambda m: nn.Conv2d(m.weight.shape[1] * m.groups, m.weight.shape[0],
                                  tuple(m.weight.shape[2:]), m.stride, m.padding, m.dilation,
                                  m.groups, m.bias is not None, m.padding_mode),
    "ReLU": lambda m: nn.ReLU(),
    "AvgPool2d": lambda m: nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                        m.count_include_pad),
    "Flatten": lambda m: nn.Flatten(m.start_dim, m.end_dim),
    "BatchNorm1d": lambda m: nn.BatchNorm1d(m.running_mean.shape[0], m.eps, m.momentum),
    "BatchNorm2d": lambda m: nn.BatchNorm2d(m.running_mean.shape[0], m.eps, m.momentum),
    "Dropout": lambda m: nn.Dropout(),
    "Identity": lambda m: nn.Identity(),
}


# --------------------------------------------------------------------------- torch.export


def _from_export(path: Path, names: list[str]) -> nn.Module:
    where = str(path)
    model_json = next(n for n in names if n.endswith("/models/model.json"))
    root = model_json[:-len("models/model.json")]
    try:
        with zipfile.ZipFile(path) as z:
            program = json.loads(z.read(model_json))
            config = json.loads(z.read(f"{root}data/weights/model_weights_config.json"))
            tensors = _export_tensors(z, root, config["config"], where)
        graph = program["graph_module"]["graph"]
        specs = program["graph_module"]["signature"]["input_specs"]
        return _rebuild_export(graph, specs, tensors, where)
    except NetworkError:
        raise
    except (zipfile.BadZipFile, OSError, KeyError, TypeError, ValueError, IndexError,
            StopIteration, RuntimeError) as e:
        raise NetworkError(f"model: {where!r} is not a readable torch.export archive "
                           f"({type(e).__name__}: {e})") from e


def _export_tensors(z: zipfile.ZipFile, root: str, config: dict, where: str) -> dict:
    """The archive's weights and buffers by name, from their raw bytes (never pickles)."""
    out, files = {}, {}
    for fqn, meta in config.items():
        if meta.get("use_pickle"):
            raise NetworkError(f"model: {where!r} stores tensor {fqn!r} pickled; snnkit does "
                               f"not unpickle model files: {TRUST_HINT}")
        t = meta["tensor_meta"]
        dtype = _DTYPES.get(t["dtype"])
        if dtype is None:
            raise NetworkError(f"model: {where!r}: tensor {fqn!r} has an unsupported dtype "
                               f"code {t['dtype']}")
        name = meta["path_name"]
        if name not in files:
            raw = bytearray(z.read(f"{root}data/weights/{name}"))
            files[name] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype)
        flat = files[name]
        size = [int(s["as_int"]) for s in t["sizes"]]
        stride = [int(s["as_int"]) for s in t["strides"]]
        offset = int(t["storage_offset"]["as_int"])
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else -1
        if offset < 0 or min(stride, default=0) < 0 or last >= flat.numel():
            raise NetworkError(f"model: {where!r}: tensor {fqn!r} lies outside its data")
        out[fqn] = torch.as_strided(flat, size, stride, offset).clone()
    return out


def _arg(a: dict):
    """A serialised operator argument as a Python value (tensors by name)."""
    kind, value = next(iter(a.items()))
    if kind == "as_tensor":
        return ("tensor", value["name"])
    if kind in ("as_int", "as_float", "as_bool", "as_ints", "as_floats", "as_bools"):
        return value
    if kind == "as_none":
        return None
    raise NetworkError(f"an operator argument of kind {kind!r} is not supported")


def _rebuild_export(graph: dict, specs: list, tensors: dict, where: str) -> nn.Module:
    """The aten chain of an exported program as an nn.Sequential."""
    params = {}
    for s in specs:
        kind, v = next(iter(s.items()))
        if kind in ("parameter", "buffer"):
            params[v["arg"]["name"]] = tensors[v["parameter_name" if kind == "parameter"
                                                 else "buffer_name"]]
    inputs = [next(iter(s.values())) for s in specs if "user_input" in s]
    if len(inputs) != 1:
        raise NetworkError(f"model: {where!r}: only models with a single input can be "
                           f"converted")
    rank = {k: len(v["sizes"]) for k, v in graph["tensor_values"].items()}
    prev = inputs[0]["arg"]["as_tensor"]["name"]
    layers: list[nn.Module] = []
    for node in graph["nodes"]:
        target = node["target"]
        if target.startswith("torch.ops.aten._assert"):
            continue
        args = {i["name"]: _arg(i["arg"]) for i in node["inputs"]}
        build = _ATEN.get(target)
        if build is None:  # a layer snnkit converts, exported as operators it cannot read
            use = instead_of(target)  # or one no route converts
            raise NetworkError(f"model: {where!r}: operator {target} (layer {len(layers)}) is "
                               f"not supported for conversion; " + (
                                   f"use {use}" if use else
                                   f"give the state dict and the model's class instead "
                                   f"(supported layers: {SUPPORTED})"))
        if args.get("input", args.get("self")) != ("tensor", prev):
            raise NetworkError(f"model: {where!r}: layer {len(layers)} ({target}) does not "
                               f"take the previous layer's output: not a plain chain")
        out = node["outputs"][0]["as_tensor"]["name"]
        layer = build(args, lambda a, args=args: params[args[a][1]] if args.get(a) else None,
                      (rank[prev], rank[out]))
        if layer is not None:
            layers.append(layer)
        prev = out
    return nn.Sequential(*layers).eval()


def _linear(args, t, ranks) -> nn.Module:
    w, b = t("weight"), t("bias")
    m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    m.load_state_dict({"weight": w} | ({"bias": b} if b is not None else {}))
    return m


def _conv2d(args, t, ranks) -> nn.Module:
    w, b = t("weight"), t("bias")
    groups = args.get("groups") or 1
    m = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
                  tuple(args.get("stride") or (1, 1)), tuple(args.get("padding") or (0, 0)),
                  tuple(args.get("dilation") or (1, 1)), groups, b is not None)
    m.load_state_dict({"weight": w} | ({"bias": b} if b is not None else {}))
    return m


def _avg_pool2d(args, t, ranks) -> nn.Module:
    k = args["kernel_size"]
    return nn.AvgPool2d(k, args.get("stride") or k, args.get("padding") or 0,
                        bool(args.get("ceil_mode")), args.get("count_include_pad", True),
                        args.get("divisor_override"))


def _batch_norm(args, t, ranks) -> nn.Module:
    mean, var, w, b = t("running_mean"), t("running_var"), t("weight"), t("bias")
    if args.get("training"):
        raise NetworkError("a batch norm exported in training mode: export model.eval()")
    cls = nn.BatchNorm2d if ranks[0] == 4 else nn.BatchNorm1d
    m = cls(mean.shape[0], float(args.get("eps", 1e-5)), affine=w is not None)
    m.load_state_dict({"running_mean": mean, "running_var": var}
                      | ({"weight": w, "bias": b} if w is not None else {}), strict=False)
    return m


def _flatten(args, t, ranks) -> nn.Module:
    if ranks[1] != 2:
        raise NetworkError(f"a reshape to rank {ranks[1]} (only a flatten to [batch, "
                           f"features] is supported)")
    return nn.Flatten()


def _dropout(args, t, ranks) -> None:
    if args.get("train"):
        raise NetworkError("a dropout exported in training mode: export model.eval()")


_ATEN = {
    "torch.ops.aten.linear.default": _linear,
    "torch.ops.aten.conv2d.default": _conv2d,
    "torch.ops.aten.relu.default": lambda a, t, r: nn.ReLU(),
    "torch.ops.aten.relu_.default": lambda a, t, r: nn.ReLU(),
    "torch.ops.aten.avg_pool2d.default": _avg_pool2d,
    "torch.ops.aten.batch_norm.default": _batch_norm,
    "torch.ops.aten.flatten.using_ints": _flatten,
    "torch.ops.aten.view.default": _flatten,
    "torch.ops.aten.reshape.default": _flatten,
    "torch.ops.aten.dropout.default": _dropout,
    "torch.ops.aten.clone.default": lambda a, t, r: None,
    "torch.ops.aten.contiguous.default": lambda a, t, r: None,
}
