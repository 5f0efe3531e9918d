"""Model facts read from an artifact as stored: parameters by component, sparsity per layer, sizes on disk.

Everything is measured from the weights file (compact matrices expanded, quantized weights dequantized), so
dense, pruned, compact and quantized artifacts are described alike.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from pipeline.models import families
from pipeline.models.compact import expand
from pipeline.models.store import WEIGHTS, artifact_scheme, read_meta, read_tensors, runtime_of, weights_file

COMPONENTS = ("embeddings", "attention", "ffn", "pooler", "head")


def float_state(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(meta, {name: float tensor})``: the parameters an artifact stands for, by state-dict name.

    Integer buffers (``position_ids``) are dropped; quantized weights are dequantized to float32.
    """
    root = Path(path)
    meta = read_meta(root)
    if (runtime := runtime_of(meta)) is not None:  # a graph for another runtime (ONNX) names its own weights
        return meta, runtime.float_state(root, meta)
    tensors = expand(read_tensors(root / WEIGHTS), str(root / WEIGHTS))
    if meta["format"] != "dense":
        tensors = artifact_scheme(root, meta).float_state(tensors, meta["quantization"], str(root / WEIGHTS))
    return meta, {k: v for k, v in tensors.items() if v.is_floating_point()}


def parameter_facts(config: dict, state: dict[str, torch.Tensor]) -> tuple[dict, list[dict]]:
    """Parameter counts by component and per encoder layer.

    Args:
        config: the artifact's ``config.json`` (its ``model_type`` picks the family adapter that names the
            components; ``hidden_size / num_attention_heads`` is the per-head width).
        state: float tensors from :func:`float_state`.

    Returns:
        ``(flat, layers)``: ``flat`` has ``params_<component>`` and ``nonzero_<component>`` for every
        component; ``layers`` one dict per encoder layer with ``layer``, ``params``, ``nonzero``,
        ``sparsity``, ``attention_params``, ``ffn_params``, ``heads`` and ``ffn_neurons``.
    """
    head_size = config["hidden_size"] // config["num_attention_heads"]
    family = families.family(config.get("model_type", "bert"))
    flat = {f"{k}_{c}": 0 for c in COMPONENTS for k in ("params", "nonzero")}
    layers: dict[int, dict] = {}
    for name, tensor in state.items():
        comp, index = family.component(name)
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
        shape_fact = family.shape_fact(name, tensor, head_size)
        if shape_fact is not None:
            row[shape_fact[0]] = shape_fact[1]
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
    stored, dense = weights_file(root, meta).stat().st_size, dense_fp32_bytes(state)
    flat.update(params=total, nonzero_params=nonzero, sparsity=1 - nonzero / total if total else 0.0,
                heads_total=sum(r["heads"] for r in layers), size_bytes=stored, dense_fp32_bytes=dense,
                compression_ratio=dense / stored, quantization=quantization_scheme(meta),
                storage=meta.get("storage", "dense"))
    return flat, layers
