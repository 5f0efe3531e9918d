"""Physical structured pruning of encoders, and rebuilding pruned shapes from a config.

transformers v5 dropped ``prune_heads`` and ``config.pruned_heads``, so the project owns the shapes:

- :func:`prune_heads_` removes attention heads (rows of the query/key/value projections, columns of the
  attention output projection) and records ``config.heads_per_layer``.
- :func:`prune_ffn_` removes feed-forward neurons (rows of the FFN input projection, columns of the output
  projection) and records ``config.intermediate_per_layer``.
- :func:`apply_config_shapes_` resizes the Linear layers of a freshly constructed model to the sizes
  recorded in its config, so a pruned checkpoint loads with a plain ``load_state_dict``.

Both config attributes are plain lists of ints, so they survive ``config.save_pretrained`` /
``from_pretrained``. ``config.num_attention_heads`` and ``config.intermediate_size`` keep their unpruned
values: the head size is ``hidden_size // num_attention_heads`` and must not change.

Only self-attention is handled (these encoders have no cross-attention). All functions accept a bare model
or any task model holding one; the layout comes from the model's family adapter
(:mod:`pipeline.models.families`), including fused projections: a head's rows are spread over the query,
key and value blocks of a fused ``Wqkv`` (``qkv_blocks``), a GLU neuron's over the input and gate blocks of
``Wi`` (``ffn_in_blocks``). A family that cannot take a per-layer change (ALBERT's shared layers) refuses it
with a :class:`pipeline.core.errors.PipelineError` before anything changes.
"""

from __future__ import annotations

import operator

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families

HEADS_ATTR = "heads_per_layer"
FFN_ATTR = "intermediate_per_layer"


def heads_per_layer(model: torch.nn.Module) -> list[int]:
    """Current number of attention heads of every encoder layer.

    Read from the physical query projection (``out_features // head_size``), so it is right for pruned
    models whether or not the config has been updated.

    Returns:
        ``[heads of layer 0, heads of layer 1, ...]``, length ``num_hidden_layers``.
    """
    family = families.of(model)
    size = family.head_size(model) * family.qkv_blocks
    return [family.qkv(layer)[0].out_features // size for layer in family.layers(model)]


def intermediate_per_layer(model: torch.nn.Module) -> list[int]:
    """Current number of feed-forward neurons (the FFN input projection's ``out_features``) of every layer."""
    family = families.of(model)
    return [family.ffn_in(layer).out_features // family.ffn_in_blocks for layer in family.layers(model)]


def position_table(model: torch.nn.Module) -> tuple[int, int] | None:
    """``(rows, rows before the first token)`` of the model's absolute position embedding table; None without
    such a table (relative or rotary positions: DeBERTa without ``position_biased_input``, ModernBERT).

    Read from the embedding table itself, so it holds for every family: RoBERTa-style embeddings number
    positions from ``padding_idx + 1``, so ``padding_idx + 1`` rows of their table are never used for tokens.
    A model run by another runtime has no modules to read (:class:`pipeline.export.runtime.OrtModel`): it
    carries the table's shape as its ``position_table`` attribute, recorded when it was exported.
    """
    if not hasattr(model, "base_model"):
        return model.position_table
    embeddings = getattr(model.base_model, "embeddings", None)
    table = getattr(embeddings, "position_embeddings", None)
    if not isinstance(table, torch.nn.Embedding):
        return None
    offset = getattr(embeddings, "padding_idx", None)
    return table.num_embeddings, (offset + 1 if isinstance(offset, int) else 0)


def check_input_length(model: torch.nn.Module, length: int, key: str, where: str) -> None:
    """Raise a :class:`PipelineError` naming ``key`` (the params key that sets ``length``) and ``where`` (the
    artifact) when inputs of ``length`` tokens do not fit the model's position embeddings."""
    table = position_table(model)
    if table is not None and length > table[0] - table[1]:
        rows, before = table
        detail = f"max_position_embeddings {rows}" + (f", {before} of them before the first token" if before else "")
        raise PipelineError(f"{key}={length} exceeds the {rows - before} positions of {where} ({detail})")


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


def _blocks(index: torch.Tensor, width: int, blocks: int) -> torch.Tensor:
    """``index`` repeated in each of ``blocks`` stacked blocks of ``width`` rows (fused / gated projections)."""
    return torch.cat([index + b * width for b in range(blocks)])


def prune_heads_(model: torch.nn.Module, keep: dict[int, list[int]]) -> None:
    """Physically remove attention heads, in place.

    Query/key/value lose the rows (and bias entries) of dropped heads; the attention output projection
    loses the matching input columns (its bias is per output feature, so it stays). The model computes exactly
    what the unpruned model computes with the dropped heads' outputs zeroed.

    Args:
        model: a float encoder or task model holding one (``model.base_model``).
        keep: layer index -> indices of the heads to keep, numbered among the layer's *current* heads
            (so pruning an already pruned model works). Order does not matter (indices are sorted).
            Layers not listed are left as they are.

    Raises:
        ValueError: an unknown layer, an empty list, a duplicate or an out-of-range head. Nothing is
            changed when the spec is invalid (validation happens before any slicing).
        PipelineError: the family cannot prune one layer's heads (ALBERT's shared layers).

    Side effects:
        ``model.config.heads_per_layer`` is set to the per-layer head counts after pruning.
    """
    family = families.of(model)
    family.check_structural(model, "heads")
    counts = heads_per_layer(model)
    keep = _check_keep(keep, counts, "head")
    layers, size = family.layers(model), family.head_size(model)
    for i, heads in keep.items():
        index = _head_index(heads, size)
        rows = _blocks(index, counts[i] * size, family.qkv_blocks)
        for proj in family.qkv(layers[i]):
            _slice_linear_(proj, rows, dim=0)
        _slice_linear_(family.attention_output(layers[i]), index, dim=1)
        family.set_head_count(layers[i], len(heads))
    model.config.heads_per_layer = heads_per_layer(model)


def prune_ffn_(model: torch.nn.Module, keep: dict[int, list[int]]) -> None:
    """Physically remove feed-forward neurons, in place.

    The FFN input projection loses the rows (and bias entries) of dropped neurons and the output projection
    the matching input columns. Equivalent to zeroing the dropped neurons' columns of the output projection.

    Args:
        model: a float encoder or task model holding one.
        keep: layer index -> indices of the neurons to keep, numbered among the layer's *current*
            neurons. Order does not matter. Layers not listed are left as they are.

    Raises:
        ValueError: an unknown layer, an empty list, a duplicate or an out-of-range neuron (nothing is
            changed then).
        PipelineError: the family cannot prune one layer's neurons (ALBERT's shared layers).

    Side effects:
        ``model.config.intermediate_per_layer`` is set to the per-layer neuron counts after pruning.
    """
    family = families.of(model)
    family.check_structural(model, "ffn")
    sizes = intermediate_per_layer(model)
    keep = _check_keep(keep, sizes, "neuron")
    layers = family.layers(model)
    for i, neurons in keep.items():
        index = torch.tensor(neurons, dtype=torch.long)
        _slice_linear_(family.ffn_in(layers[i]), _blocks(index, sizes[i], family.ffn_in_blocks), dim=0)
        _slice_linear_(family.ffn_out(layers[i]), index, dim=1)
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


def _resize_(linear: torch.nn.Linear, in_features: int, out_features: int, std: float) -> None:
    """Give ``linear`` fresh parameters of a new shape, in place (the module object stays)."""
    new = _fresh_linear(linear, in_features, out_features, std)
    linear.weight, linear.bias = new.weight, new.bias
    linear.in_features, linear.out_features = in_features, out_features


def _resize_heads_(family, layer: torch.nn.Module, heads: int, head_size: int, std: float) -> None:
    """Resize one layer's q/k/v and attention output projections for ``heads`` heads."""
    width = heads * head_size
    for proj in family.qkv(layer):
        _resize_(proj, proj.in_features, width * family.qkv_blocks, std)
    out = family.attention_output(layer)
    _resize_(out, width, out.out_features, std)
    family.set_head_count(layer, heads)


def _resize_ffn_(family, layer: torch.nn.Module, neurons: int, std: float) -> None:
    """Resize one layer's FFN input and output projections for ``neurons`` neurons."""
    ffn_in, ffn_out = family.ffn_in(layer), family.ffn_out(layer)
    _resize_(ffn_in, ffn_in.in_features, neurons * family.ffn_in_blocks, std)
    _resize_(ffn_out, neurons, ffn_out.out_features, std)


def apply_config_shapes_(model: torch.nn.Module) -> None:
    """Resize a freshly constructed model to the pruned shapes recorded in its config, in place.

    Reads ``config.heads_per_layer`` and ``config.intermediate_per_layer`` (as written by
    :func:`prune_heads_` / :func:`prune_ffn_`). Every layer whose current size differs is given new,
    freshly initialised Linear modules of the recorded size, so ``load_state_dict`` of the pruned
    checkpoint then succeeds. Layers already of the recorded size are untouched, which makes the call
    idempotent and a no-op when the attributes are absent or hold the full sizes.

    Args:
        model: a float encoder or task model holding one, normally straight from ``Class(config)``.

    Raises:
        ValueError: a recorded list of the wrong length or with a size outside ``[1, full size]``.
    """
    config = model.config
    family = families.of(model)
    layers, head_size = family.layers(model), family.head_size(model)
    std = getattr(config, "initializer_range", 0.02)
    heads = _configured_sizes(config, HEADS_ATTR, family.full_heads(config))
    if heads is not None:
        for layer, now, want in zip(layers, heads_per_layer(model), heads):
            if now != want:
                _resize_heads_(family, layer, want, head_size, std)
    neurons = _configured_sizes(config, FFN_ATTR, family.full_ffn(config))
    if neurons is not None:
        for layer, now, want in zip(layers, intermediate_per_layer(model), neurons):
            if now != want:
                _resize_ffn_(family, layer, want, std)


def drop_layers_(model: torch.nn.Module, keep: list[int]) -> None:
    """Keep only the encoder layers at ``keep`` (sorted, renumbered 0..k-1), in place.

    ``config.num_hidden_layers`` and any per-layer shape lists (heads, FFN sizes) follow, so the saved model
    reloads as a plain, shallower model of its family.

    Raises:
        ValueError: an empty ``keep`` or an index outside the model's layers (nothing is changed then).
        PipelineError: the family cannot drop these layers (ALBERT's shared layers, ModernBERT's first).
    """
    family = families.of(model)
    layers = family.layers(model)
    count = len(layers)
    keep = sorted(set(keep))
    if not keep or keep[0] < 0 or keep[-1] >= count:
        raise ValueError(f"layers to keep {keep} are out of range for a {count}-layer model")
    family.check_structural(model, "layers", keep)
    family.set_layers(model, [layers[i] for i in keep])
    for new_index, layer in enumerate(family.layers(model)):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = model.config
    config.num_hidden_layers = len(keep)
    for attr in (HEADS_ATTR, FFN_ATTR):
        sizes = getattr(config, attr, None)
        if sizes is not None:
            setattr(config, attr, [sizes[i] for i in keep])
    family.after_drop(model, keep)
