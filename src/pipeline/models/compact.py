"""Compact storage of sparse weights: a bitmask of the non-zeros plus their values.

Unstructured and N:M pruning keep the tensor shapes, so a plain SafeTensors file is as large as the dense
model. Storing a pruned matrix as ``<name>.__bitmask`` (uint8, one bit per weight, ``numpy.packbits``
order), ``<name>.__values`` (the non-zeros in row-major order, original dtype) and ``<name>.__shape``
(int64) makes the size on disk follow the sparsity: at sparsity ``s`` a float32 matrix takes about
``(1 - s) + 1/32`` of its dense size. The loader rebuilds the dense tensors, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.core.errors import PipelineError

SUFFIXES = (".__bitmask", ".__values", ".__shape")
# Below this zero fraction the bitmask costs more than the zeros it saves (1/32 for float32), with margin.
MIN_SPARSITY = 0.1


def compact(state: dict[str, torch.Tensor], min_sparsity: float = MIN_SPARSITY) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Replace every floating-point matrix with at least ``min_sparsity`` zeros by bitmask + values.

    Returns:
        ``(tensors, compacted names)``; other tensors are passed through unchanged.
    """
    out: dict[str, torch.Tensor] = {}
    names = []
    for name, tensor in state.items():
        if name.endswith(SUFFIXES):
            raise PipelineError(f"tensor name '{name}' collides with the compact storage suffixes")
        t = tensor.detach().cpu()
        if t.is_floating_point() and t.ndim == 2 and t.numel() and float((t == 0).float().mean()) >= min_sparsity:
            nonzero = (t != 0).flatten()
            out[f"{name}.__bitmask"] = torch.from_numpy(np.packbits(nonzero.numpy()))
            out[f"{name}.__values"] = t.flatten()[nonzero].contiguous()
            out[f"{name}.__shape"] = torch.tensor(list(t.shape), dtype=torch.int64)
            names.append(name)
        else:
            out[name] = t.contiguous()
    return out, names


def expand(tensors: dict[str, torch.Tensor], source: str = "tensors") -> dict[str, torch.Tensor]:
    """The dense state dict from :func:`compact` output (tensors without the suffixes pass through)."""
    out = {k: v for k, v in tensors.items() if not k.endswith(SUFFIXES)}
    for key in tensors:
        if not key.endswith(".__bitmask"):
            continue
        name = key.removesuffix(".__bitmask")
        try:
            shape = [int(s) for s in tensors[f"{name}.__shape"]]
            values = tensors[f"{name}.__values"]
        except KeyError as err:
            raise PipelineError(f"{source}: compact tensor '{name}' lacks {err.args[0]}") from None
        count = int(np.prod(shape))
        mask = torch.from_numpy(np.unpackbits(tensors[key].numpy(), count=count).astype(bool))
        if int(mask.sum()) != values.numel():
            raise PipelineError(f"{source}: compact tensor '{name}' has {values.numel()} values for "
                                f"{int(mask.sum())} set bits")
        dense = torch.zeros(count, dtype=values.dtype)
        dense[mask] = values
        out[name] = dense.view(shape)
    return out


def compact_model(model: torch.nn.Module, meta: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors to store for ``model`` in compact storage and its ``pipeline.json`` with
    ``storage: compact`` and the number of compacted matrices (pass both to
    :func:`pipeline.models.store.save_model`). Tied duplicates (the MLM decoder) are left out."""
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    tensors, names = compact({k: v for k, v in model.state_dict().items() if k not in tied})
    return tensors, {**meta, "storage": "compact", "compact_tensors": len(names)}
