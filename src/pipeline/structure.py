"""Physical structured pruning of BERT encoders, and rebuilding pruned shapes from a config.

transformers v5 dropped ``prune_heads`` and ``config.pruned_heads``, so the project owns the shapes:

- :func:`prune_heads_` removes attention heads (rows of query/key/value, columns of ``attention.output.dense``)
  and records ``config.heads_per_layer``.
- :func:`prune_ffn_` removes feed-forward neurons (rows of ``intermediate.dense``, columns of
  ``output.dense``) and records ``config.intermediate_per_layer``.
- :func:`apply_config_shapes_` resizes the Linear layers of a freshly constructed model to the sizes
  recorded in its config, so a pruned checkpoint loads with a plain ``load_state_dict``.

Both config attributes are plain lists of ints, so they survive ``config.save_pretrained`` /
``BertConfig.from_pretrained``. ``config.num_attention_heads`` and ``config.intermediate_size`` keep their
unpruned values: the head size is ``hidden_size // num_attention_heads`` and must not change.

Only self-attention is handled (BERT encoders have no cross-attention). All functions accept a bare
``BertModel`` or any task model holding one (``model.base_model``).
"""

from __future__ import annotations

import operator

import torch

HEADS_ATTR = "heads_per_layer"
FFN_ATTR = "intermediate_per_layer"


def _layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The encoder layers of a BertModel or of a task model wrapping one."""
    return model.base_model.encoder.layer


def _head_size(model: torch.nn.Module) -> int:
    """Per-head width ``hidden_size // num_attention_heads`` (fixed by the unpruned config)."""
    return _layers(model)[0].attention.self.attention_head_size


def heads_per_layer(model: torch.nn.Module) -> list[int]:
    """Current number of attention heads of every encoder layer.

    Read from the physical query projection (``out_features // head_size``), so it is right for pruned
    models whether or not the config has been updated.

    Returns:
        ``[heads of layer 0, heads of layer 1, ...]``, length ``num_hidden_layers``.
    """
    size = _head_size(model)
    return [layer.attention.self.query.out_features // size for layer in _layers(model)]


def intermediate_per_layer(model: torch.nn.Module) -> list[int]:
    """Current number of feed-forward neurons (``intermediate.dense.out_features``) of every layer."""
    return [layer.intermediate.dense.out_features for layer in _layers(model)]


# ------------------------------------------------------------------------------------------- validation


def _check_keep(keep: dict[int, list[int]], sizes: list[int], unit: str) -> dict[int, list[int]]:
    """Validate a keep-spec against current sizes and return it with sorted index lists.

    Args:
        keep: layer index -> indices of the units (heads or neurons) to keep, in current numbering.
        sizes: current number of units per layer.
        unit: ``"head"`` or ``"neuron"``, for messages.

    Raises:
        ValueError: naming the layer (and unit) for an out-of-range layer, an empty list, a duplicate or
            an out-of-range index.
    """
    checked = {}
    for layer, indices in keep.items():
        try:
            layer = operator.index(layer)  # ints and integer scalars (numpy, 0-d tensors); not "1" or 1.0
        except TypeError:
            raise ValueError(f"layer {layer!r} is not an integer layer index") from None
        if not 0 <= layer < len(sizes):
            raise ValueError(f"layer {layer} out of range: the model has {len(sizes)} layers")
        if layer in checked:
            raise ValueError(f"layer {layer} is listed twice")
        try:
            indices = [operator.index(i) for i in indices]
        except TypeError:
            raise ValueError(f"layer {layer}: {unit} indices must be integers, got {list(indices)!r}") from None
        if not indices:
            raise ValueError(f"layer {layer}: must keep at least one {unit}")
        for i in indices:
            if not 0 <= i < sizes[layer]:
                raise ValueError(f"layer {layer}: {unit} {i} out of range (layer has {sizes[layer]} {unit}s)")
        duplicates = sorted({i for i in indices if indices.count(i) > 1})
        if duplicates:
            raise ValueError(f"layer {layer}: duplicate {unit} indices {duplicates}")
        # sorted: kept units stay in their original order, so the result does not depend on list order
        checked[layer] = sorted(indices)
    return checked


# ------------------------------------------------------------------------------------------- slicing


@torch.no_grad()
def _slice_linear_(linear: torch.nn.Linear, index: torch.Tensor, dim: int) -> None:
    """Keep only ``index`` along ``dim`` of a Linear's weight (0: outputs, 1: inputs), in place.

    The module object stays the same (hooks and parent references survive); its parameters are new
    ``Parameter`` objects, so an optimizer built before the call must be rebuilt.

    Args:
        linear: the layer; ``weight`` is ``(out_features, in_features)``.
        index: 1-D long tensor of kept rows (``dim=0``) or columns (``dim=1``).
        dim: 0 slices outputs (and the bias), 1 slices inputs (the bias is unchanged).
    """
    index = index.to(linear.weight.device)
    weight = linear.weight.index_select(dim, index).clone()
    linear.weight = torch.nn.Parameter(weight, requires_grad=linear.weight.requires_grad)
    if dim == 0:
        if linear.bias is not None:
            bias = linear.bias.index_select(0, index).clone()
            linear.bias = torch.nn.Parameter(bias, requires_grad=linear.bias.requires_grad)
        linear.out_features = weight.shape[0]
    else:
        linear.in_features = weight.shape[1]


def _head_index(heads: list[int], head_size: int) -> torch.Tensor:
    """Flat feature indices of ``heads`` in a ``(heads * head_size)`` projection (head-major layout)."""
    return torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in heads])


def _set_head_count(attention: torch.nn.Module, heads: int) -> None:
    """Keep the BertSelfAttention bookkeeping in sync with its physical shape."""
    attention.num_attention_heads = heads
    attention.all_head_size = heads * attention.attention_head_size


def prune_heads_(model: torch.nn.Module, keep: dict[int, list[int]]) -> None:
    """Physically remove attention heads, in place.

    Query/key/value lose the rows (and bias entries) of dropped heads; ``attention.output.dense`` loses
    the matching input columns (its bias is per output feature, so it stays). The model computes exactly
    what the unpruned model computes with the dropped heads' outputs zeroed.

    Args:
        model: a float BertModel or task model holding one (``model.base_model``).
        keep: layer index -> indices of the heads to keep, numbered among the layer's *current* heads
            (so pruning an already pruned model works). Order does not matter (indices are sorted).
            Layers not listed are left as they are.

    Raises:
        ValueError: an unknown layer, an empty list, a duplicate or an out-of-range head. Nothing is
            changed when the spec is invalid (validation happens before any slicing).

    Side effects:
        ``model.config.heads_per_layer`` is set to the per-layer head counts after pruning.
    """
    keep = _check_keep(keep, heads_per_layer(model), "head")
    layers = _layers(model)
    for i, heads in keep.items():
        self_attn = layers[i].attention.self
        index = _head_index(heads, self_attn.attention_head_size)
        for proj in (self_attn.query, self_attn.key, self_attn.value):
            _slice_linear_(proj, index, dim=0)
        _slice_linear_(layers[i].attention.output.dense, index, dim=1)
        _set_head_count(self_attn, len(heads))
    model.config.heads_per_layer = heads_per_layer(model)


def prune_ffn_(model: torch.nn.Module, keep: dict[int, list[int]]) -> None:
    """Physically remove feed-forward neurons, in place.

    ``intermediate.dense`` loses the rows (and bias entries) of dropped neurons and ``output.dense`` the
    matching input columns. Equivalent to zeroing the dropped neurons' columns of ``output.dense``.

    Args:
        model: a float BertModel or task model holding one.
        keep: layer index -> indices of the neurons to keep, numbered among the layer's *current*
            neurons. Order does not matter. Layers not listed are left as they are.

    Raises:
        ValueError: an unknown layer, an empty list, a duplicate or an out-of-range neuron (nothing is
            changed then).

    Side effects:
        ``model.config.intermediate_per_layer`` is set to the per-layer neuron counts after pruning.
    """
    keep = _check_keep(keep, intermediate_per_layer(model), "neuron")
    layers = _layers(model)
    for i, neurons in keep.items():
        index = torch.tensor(neurons, dtype=torch.long)
        _slice_linear_(layers[i].intermediate.dense, index, dim=0)
        _slice_linear_(layers[i].output.dense, index, dim=1)
    model.config.intermediate_per_layer = intermediate_per_layer(model)


# ------------------------------------------------------------------------------------------- rebuilding


def _configured_sizes(config, attr: str, full: int) -> list[int] | None:
    """The per-layer sizes recorded in ``config.<attr>``, validated; None when absent.

    Raises:
        ValueError: wrong length, or a size outside ``[1, full]``.
    """
    sizes = getattr(config, attr, None)
    if sizes is None:
        return None
    sizes = [int(s) for s in sizes]
    if len(sizes) != config.num_hidden_layers:
        raise ValueError(f"config.{attr} has {len(sizes)} entries, expected {config.num_hidden_layers} (one per layer)")
    for layer, size in enumerate(sizes):
        if not 1 <= size <= full:
            raise ValueError(f"config.{attr}[{layer}] = {size} is outside [1, {full}]")
    return sizes


def _fresh_linear(like: torch.nn.Linear, in_features: int, out_features: int, std: float) -> torch.nn.Linear:
    """A new Linear on ``like``'s device/dtype, initialised like BERT does (normal(0, std), zero bias).

    BERT's init rather than PyTorch's default, so a model that is resized but never loaded still behaves
    like a freshly constructed transformers model.
    """
    has_bias = like.bias is not None
    new = torch.nn.Linear(in_features, out_features, bias=has_bias, device=like.weight.device, dtype=like.weight.dtype)
    with torch.no_grad():
        new.weight.normal_(0.0, std)
        if has_bias:
            new.bias.zero_()
    new.weight.requires_grad_(like.weight.requires_grad)
    return new


def _resize_heads_(layer: torch.nn.Module, heads: int, std: float) -> None:
    """Replace one layer's q/k/v and attention output projections by ones sized for ``heads`` heads."""
    self_attn = layer.attention.self
    width = heads * self_attn.attention_head_size
    for name in ("query", "key", "value"):
        old = getattr(self_attn, name)
        setattr(self_attn, name, _fresh_linear(old, old.in_features, width, std))
    old = layer.attention.output.dense
    layer.attention.output.dense = _fresh_linear(old, width, old.out_features, std)
    _set_head_count(self_attn, heads)


def _resize_ffn_(layer: torch.nn.Module, neurons: int, std: float) -> None:
    """Replace one layer's ``intermediate.dense`` and ``output.dense`` by ones with ``neurons`` neurons."""
    old = layer.intermediate.dense
    layer.intermediate.dense = _fresh_linear(old, old.in_features, neurons, std)
    old = layer.output.dense
    layer.output.dense = _fresh_linear(old, neurons, old.out_features, std)


def apply_config_shapes_(model: torch.nn.Module) -> None:
    """Resize a freshly constructed model to the pruned shapes recorded in its config, in place.

    Reads ``config.heads_per_layer`` and ``config.intermediate_per_layer`` (as written by
    :func:`prune_heads_` / :func:`prune_ffn_`). Every layer whose current size differs is given new,
    freshly initialised Linear modules of the recorded size, so ``load_state_dict`` of the pruned
    checkpoint then succeeds. Layers already of the recorded size are untouched, which makes the call
    idempotent and a no-op when the attributes are absent or hold the full sizes.

    Args:
        model: a float BertModel or task model holding one, normally straight from ``Class(config)``.

    Raises:
        ValueError: a recorded list of the wrong length or with a size outside ``[1, full size]``.
    """
    config = model.config
    layers = _layers(model)
    std = getattr(config, "initializer_range", 0.02)
    heads = _configured_sizes(config, HEADS_ATTR, config.num_attention_heads)
    if heads is not None:
        for layer, now, want in zip(layers, heads_per_layer(model), heads):
            if now != want:
                _resize_heads_(layer, want, std)
    neurons = _configured_sizes(config, FFN_ATTR, config.intermediate_size)
    if neurons is not None:
        for layer, now, want in zip(layers, intermediate_per_layer(model), neurons):
            if now != want:
                _resize_ffn_(layer, want, std)
