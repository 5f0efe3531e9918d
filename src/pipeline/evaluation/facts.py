"""Model facts read from an artifact as stored: parameters by component, sparsity per layer, sizes on disk.

Everything is measured from the weights file (compact matrices expanded, quantized weights dequantized), so
dense, pruned, compact and quantized artifacts are described alike.

Three zero fractions, because quantization makes zeros too (int8 rounding zeroed 26% of a MiniLM layer's
weights, which a plain zero count would report as pruned):

- ``sparsity``: zeros among *all* stored parameters (embeddings, LayerNorms, biases and heads included), as
  loaded, whatever made them (pruning, quantization rounding, zero-initialised biases).
- ``pruned_sparsity``: zeros among the *prunable weights* (the encoder layers' Linear weight matrices, what
  the pruning methods zero) of the float weights the artifact was made from: the artifact itself when it is
  float (``format: dense``), else its quantization source, whose per-matrix zero counts the quantize stage
  records in ``pipeline.json`` (``quantization.source_zeros``).
- ``quantization_zero_fraction``: the prunable weights that are zero as stored but were not in those float
  weights, as a fraction of the prunable weights (stored zeros minus source zeros; 0 for a float
  artifact). Every registered scheme maps 0 to 0, so this counts the weights rounding made zero.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from pipeline.artifacts import artifact_scheme, read_meta, runtime_of, weights_file
from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.compact import expand
from pipeline.models.store import WEIGHTS, read_tensors

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
            components and reads the per-head width, e.g. ``hidden_size / num_attention_heads``).
        state: float tensors from :func:`float_state`.

    Returns:
        ``(flat, layers)``: ``flat`` has ``params_<component>`` and ``nonzero_<component>`` for every
        component; ``layers`` one dict per encoder layer with ``layer``, ``params``, ``nonzero``,
        ``sparsity``, ``attention_params``, ``ffn_params``, ``heads`` and ``ffn_neurons``.
    """
    family = families.family(config.get("model_type"))
    head_size = family.config_head_size(family.config_class.from_dict(config))
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


def _fraction(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def source_zeros(root: Path, meta: dict, names: list[str]) -> dict[str, int] | None:
    """Zeros per prunable weight of the float weights a quantized artifact was made from, by state-dict name
    (``quantization.source_zeros`` of its ``pipeline.json``, keyed by module path inside the bare model); None for a
    float artifact (its own zeros are those), a float graph of another runtime (an ``onnx`` export) included.

    Raises:
        PipelineError: a quantized artifact without the record, or one that misses a prunable weight.
    """
    if meta["format"] == "dense" or (runtime_of(meta) is not None and "quantization" not in meta):
        return None
    recorded = (meta.get("quantization") or {}).get("source_zeros")
    if not isinstance(recorded, dict):
        raise PipelineError(f"{root / 'pipeline.json'}: quantization.source_zeros missing (the zeros of the quantized "
                            "source; recorded by pipeline.quantize.quantize_model: requantize)")
    out = {}
    for name in names:
        key = next((k for k in recorded if name == f"{k}.weight" or name.endswith(f".{k}.weight")), None)
        if key is None:
            raise PipelineError(f"{root / 'pipeline.json'}: quantization.source_zeros has no entry for {name}")
        out[name] = int(recorded[key])
    return out


def zero_facts(root: Path, meta: dict, config: dict, state: dict[str, torch.Tensor]) -> tuple[dict, dict[int, dict]]:
    """``pruned_sparsity`` and ``quantization_zero_fraction`` (module docstring) of the whole artifact and per
    encoder layer.

    The prunable weights are the 2-D ``*.weight`` tensors of the encoder layers (the family adapter places a
    name in a layer), i.e. their Linear weight matrices.

    Returns:
        ``(flat, by_layer)``: ``flat`` with ``prunable_params``, ``pruned_sparsity``,
        ``quantization_zero_fraction`` (None without prunable weights); ``by_layer`` the same keys per layer index.
    """
    family = families.family(config.get("model_type", "bert"))
    names = [n for n, t in state.items()
             if t.dim() == 2 and n.endswith(".weight") and family.component(n)[1] is not None]
    before = source_zeros(root, meta, names)
    # (prunable weights, pruned zeros, zeros added by quantization) per layer index, and None for the artifact
    counts: dict[int | None, np.ndarray] = {}
    for name in names:
        stored = int(state[name].numel() - torch.count_nonzero(state[name]))
        pruned = stored if before is None else before[name]
        for key in (family.component(name)[1], None):
            counts[key] = counts.get(key, np.zeros(3, dtype=np.int64)) + (state[name].numel(), pruned, stored - pruned)

    def facts(row) -> dict:
        n, pruned, added = (int(x) for x in row)
        return {"prunable_params": n, "pruned_sparsity": _fraction(pruned, n),
                "quantization_zero_fraction": _fraction(added, n)}

    flat = facts(counts.pop(None, np.zeros(3, dtype=np.int64)))
    return flat, {layer: facts(row) for layer, row in counts.items()}


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
        ``sparsity``, ``prunable_params``, ``pruned_sparsity``, ``quantization_zero_fraction`` (module
        docstring), per-component counts, ``heads_total``, ``size_bytes`` of the stored weights,
        ``dense_fp32_bytes``, ``compression_ratio`` = dense / stored, ``quantization``, ``storage``);
        ``layers`` is :func:`parameter_facts`' per-layer list with the layer's :func:`zero_facts`.

    Raises:
        PipelineError: a quantized artifact without its source's zero counts (:func:`source_zeros`).
    """
    root = Path(path)
    meta, state = float_state(root)
    config = json.loads((root / "config.json").read_text())
    flat, layers = parameter_facts(config, state)
    zeros, by_layer = zero_facts(root, meta, config, state)
    for row in layers:
        row.update(by_layer.get(row["layer"], {"prunable_params": 0, "pruned_sparsity": None,
                                               "quantization_zero_fraction": None}))
    flat.update(zeros)
    total = sum(flat[f"params_{c}"] for c in COMPONENTS)
    nonzero = sum(flat[f"nonzero_{c}"] for c in COMPONENTS)
    stored, dense = weights_file(root, meta).stat().st_size, dense_fp32_bytes(state)
    flat.update(params=total, nonzero_params=nonzero, sparsity=1 - nonzero / total if total else 0.0,
                heads_total=sum(r["heads"] for r in layers), size_bytes=stored, dense_fp32_bytes=dense,
                compression_ratio=dense / stored, quantization=quantization_scheme(meta),
                storage=meta.get("storage", "dense"))
    return flat, layers
