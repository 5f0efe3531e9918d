"""Model facts read from an artifact as stored: parameters by component, sparsity per layer, sizes on disk.

Everything is measured from the weights file (compact matrices expanded, quantized weights dequantized), so
dense, pruned, compact and quantized artifacts are described alike.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from pipeline.artifacts import WEIGHT_FORMATS, WEIGHTS, read_meta, read_tensors
from pipeline.sparse_storage import expand
from pipeline.weight_quant import dequantized_state

_LAYER = re.compile(r"encoder\.layer\.(\d+)\.(attention|intermediate|output)\.")
COMPONENTS = ("embeddings", "attention", "ffn", "pooler", "head")


def _dequantize_int8(tensors: dict[str, torch.Tensor], modules: list[str]) -> dict[str, torch.Tensor]:
    """Float weights of a ``dynamic_int8`` artifact: ``(q - zero_point) * scale`` (per tensor or per row)."""
    tensors = dict(tensors)
    for path in modules:
        q = tensors.pop(f"{path}.weight_int8").float()
        scale, zero = tensors.pop(f"{path}.weight_scale"), tensors.pop(f"{path}.weight_zero_point")
        if scale.numel() > 1:  # per output channel (axis 0)
            scale, zero = scale.unsqueeze(1), zero.unsqueeze(1)
        tensors[f"{path}.weight"] = (q - zero.float()) * scale
    return tensors


def float_state(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(meta, {name: float tensor})``: the parameters an artifact stands for, by state-dict name.

    Integer buffers (``position_ids``) are dropped; quantized weights are dequantized to float32.
    """
    meta = read_meta(path)
    tensors = expand(read_tensors(Path(path) / WEIGHTS), str(Path(path) / WEIGHTS))
    if meta["format"] == "dynamic_int8":
        tensors = _dequantize_int8(tensors, meta["quantization"]["quantized_modules"])
    elif meta["format"] in WEIGHT_FORMATS:
        tensors = dequantized_state(tensors, meta["quantization"], str(Path(path) / WEIGHTS))
    return meta, {k: v for k, v in tensors.items() if v.is_floating_point()}


def component(name: str) -> tuple[str, int | None]:
    """``(component, layer index or None)`` of a parameter name; component is one of :data:`COMPONENTS`."""
    m = _LAYER.search(name)
    if m:
        return ("attention" if m.group(2) == "attention" else "ffn"), int(m.group(1))
    if ".embeddings." in f".{name}":
        return "embeddings", None
    if ".pooler." in f".{name}":
        return "pooler", None
    return "head", None


def parameter_facts(config: dict, state: dict[str, torch.Tensor]) -> tuple[dict, list[dict]]:
    """Parameter counts by component and per encoder layer.

    Args:
        config: the artifact's ``config.json`` (for the per-head width ``hidden_size / num_attention_heads``).
        state: float tensors from :func:`float_state`.

    Returns:
        ``(flat, layers)``: ``flat`` has ``params_<component>`` and ``nonzero_<component>`` for every
        component; ``layers`` one dict per encoder layer with ``layer``, ``params``, ``nonzero``,
        ``sparsity``, ``attention_params``, ``ffn_params``, ``heads`` and ``ffn_neurons``.
    """
    head_size = config["hidden_size"] // config["num_attention_heads"]
    flat = {f"{k}_{c}": 0 for c in COMPONENTS for k in ("params", "nonzero")}
    layers: dict[int, dict] = {}
    for name, tensor in state.items():
        comp, index = component(name)
        n, nz = tensor.numel(), int(torch.count_nonzero(tensor))
        flat[f"params_{comp}"] += n
        flat[f"nonzero_{comp}"] += nz
        if index is None:
            continue
        row = layers.setdefault(index, {"layer": index, "params": 0, "nonzero": 0, "attention_params": 0,
                                        "ffn_params": 0, "heads": 0, "ffn_neurons": 0})
        row["params"] += n
        row["nonzero"] += nz
        row[f"{comp}_params"] += n
        if name.endswith("attention.self.query.weight"):
            row["heads"] = tensor.shape[0] // head_size
        elif name.endswith("intermediate.dense.weight"):
            row["ffn_neurons"] = tensor.shape[0]
    for row in layers.values():
        row["sparsity"] = 1 - row["nonzero"] / row["params"] if row["params"] else 0.0
    return flat, [layers[i] for i in sorted(layers)]


def dense_fp32_bytes(state: dict[str, torch.Tensor]) -> int:
    """Size in bytes of a plain float32 SafeTensors copy of ``state``, measured by writing it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / WEIGHTS
        save_file({k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}, str(out))
        return out.stat().st_size


def quantization_scheme(meta: dict) -> str:
    """The artifact's quantization scheme from ``pipeline.json`` (``"none"`` for float artifacts)."""
    q = meta.get("quantization")
    return q.get("scheme", "none") if isinstance(q, dict) else "none"


def model_facts(path: str | Path) -> tuple[dict, list[dict]]:
    """All facts of one artifact.

    Returns:
        ``(flat, layers)``: ``flat`` holds scalars for the metrics file (``params``, ``nonzero_params``,
        ``sparsity``, per-component counts, ``heads_total``, ``size_bytes`` of the stored weights,
        ``dense_fp32_bytes``, ``compression_ratio`` = dense / stored, ``quantization``, ``storage``);
        ``layers`` is :func:`parameter_facts`' per-layer list.
    """
    root = Path(path)
    meta, state = float_state(root)
    flat, layers = parameter_facts(json.loads((root / "config.json").read_text()), state)
    total = sum(flat[f"params_{c}"] for c in COMPONENTS)
    nonzero = sum(flat[f"nonzero_{c}"] for c in COMPONENTS)
    stored, dense = (root / WEIGHTS).stat().st_size, dense_fp32_bytes(state)
    flat.update(params=total, nonzero_params=nonzero, sparsity=1 - nonzero / total if total else 0.0,
                heads_total=sum(r["heads"] for r in layers), size_bytes=stored, dense_fp32_bytes=dense,
                compression_ratio=dense / stored, quantization=quantization_scheme(meta),
                storage=meta.get("storage", "dense"))
    return flat, layers
