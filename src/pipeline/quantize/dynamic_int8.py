"""Dynamic int8 quantization (CPU int8 kernels) and its SafeTensors representation: scheme ``dynamic_int8``.

A dynamically quantized model keeps its Linear weights as packed int8 tensors that ``state_dict`` exposes
as opaque ``_packed_params`` tuples, which SafeTensors cannot store. :func:`int8_tensors` flattens such a
model into plain tensors (int8 weights, scales, zero points, float biases, and every other float tensor)
and :func:`load_int8_` rebuilds the quantized model from them, bit for bit.

Stored names, for a quantized Linear at module path ``P``:

- ``P.weight_int8``: int8, ``(out_features, in_features)``
- ``P.weight_scale``: float32, ``(1,)`` per tensor or ``(out_features,)`` per channel
- ``P.weight_zero_point``: int64, same shape as the scale
- ``P.bias``: float32, ``(out_features,)``, only when the layer has a bias

Everything else keeps its ordinary ``state_dict`` name (embeddings, LayerNorms, the MLM output bias...).

Kernels (:func:`kernel_for`): on the CPU, torch's dynamic int8 Linears (``torch.ao``, deprecated upstream and
kept while it exists; the ONNX Runtime int8 export is the maintained CPU path); on CUDA, torchao's int8 dynamic
activation + int8 weight Linear (``_int_mm``) on the weights the stored int8 values stand for.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import warnings
from collections.abc import Iterator

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

from pipeline.core.errors import PipelineError
from pipeline.quantize import NoParams, cuda_kernel, linears, multiple_of, register, torchao_prepare
from pipeline.models.formats import Kernel, Prepared, Scheme, Tensors

SCHEME = "dynamic_int8"
CPU_KERNEL = "torch.ao dynamic int8 Linear (CPU)"
CUDA_KERNEL = "torchao Int8DynamicActivationInt8WeightConfig (int8 _int_mm)"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.ao's deprecation chatter (it fires on every call and says nothing actionable here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        yield


def _quantize_inplace(model: torch.nn.Module) -> torch.nn.Module:
    """Swap every ``torch.nn.Linear`` of a CPU float32 model for a dynamic int8 one (per-tensor weights)."""
    with _quiet():
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A dynamically int8-quantized copy of ``model``, in eval mode; ``model`` itself is not changed.

    *All* ``torch.nn.Linear`` layers are quantized: attention q/k/v/output, both feed-forward layers, the
    pooler and the task head (classifier, QA outputs, MLM transform and decoder; the decoder's tie to the
    word embeddings is broken, the embeddings stay float). Weights get symmetric per-tensor int8 scales
    from their min/max; activations are quantized per batch at run time (uint8, per tensor). Embeddings
    and LayerNorms stay float32.

    Args:
        model: a float model on any device; the copy is moved to CPU float32 (the int8 kernels are CPU-only).

    Returns:
        The quantized copy, in eval mode.
    """
    qmodel = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    return _quantize_inplace(qmodel)


def quantized_modules(qmodel: torch.nn.Module) -> dict[str, DynamicQuantizedLinear]:
    """Module path -> dynamic quantized Linear, in module order."""
    return {name: m for name, m in qmodel.named_modules() if isinstance(m, DynamicQuantizedLinear)}


def _under(key: str, prefixes: set[str]) -> bool:
    """Whether a state-dict key belongs to one of the modules at ``prefixes``."""
    parts = key.split(".")
    return any(".".join(parts[:n]) in prefixes for n in range(1, len(parts)))


def _qscheme_name(weight: torch.Tensor) -> str:
    """``per_tensor_affine`` or ``per_channel_affine`` for a quantized weight (symmetric counts as affine)."""
    if weight.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return "per_tensor_affine"
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if weight.q_per_channel_axis() != 0:
            raise ValueError(f"per-channel axis {weight.q_per_channel_axis()} is not supported (only 0)")
        return "per_channel_affine"
    raise ValueError(f"unsupported weight qscheme {weight.qscheme()}")


def _weight_tensors(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(int8 values, float32 scale(s), int64 zero point(s))`` of a quantized weight, as fresh tensors.

    Scales are computed by the observers in float32 and the int8 kernels use them as float32, so storing
    float32 loses nothing that the model uses.
    """
    values = weight.int_repr().clone().contiguous()
    if _qscheme_name(weight) == "per_tensor_affine":
        scale = torch.tensor([weight.q_scale()], dtype=torch.float32)
        zero_point = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
    else:
        scale = weight.q_per_channel_scales().to(torch.float32).clone().contiguous()
        zero_point = weight.q_per_channel_zero_points().to(torch.int64).clone().contiguous()
    return values, scale, zero_point


def int8_tensors(qmodel: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten a dynamically quantized model into plain tensors for ``safetensors.torch.save_file``.

    Args:
        qmodel: a model from :func:`quantize_dynamic_int8` (or ``quantize_dynamic`` with qint8 weights,
            per-tensor or per-channel along axis 0).

    Returns:
        ``(tensors, scheme)``. ``tensors`` maps names (see the module docstring) to contiguous CPU tensors
        that never share storage. ``scheme`` is JSON-able::

            {"scheme": "dynamic_int8", "quantized_modules": [paths...], "qscheme": "per_tensor_affine",
             "weight_dtype": "int8", "activation": "dynamic per-tensor uint8", "engine": "x86"}

    Raises:
        ValueError: no quantized Linear found, or mixed/unsupported qschemes.
    """
    modules = quantized_modules(qmodel)
    if not modules:
        raise ValueError("the model has no dynamically quantized Linear layers")
    tensors: dict[str, torch.Tensor] = {}
    qschemes = set()
    for path, module in modules.items():
        weight, bias = module._weight_bias()
        qschemes.add(_qscheme_name(weight))
        values, scale, zero_point = _weight_tensors(weight)
        tensors[f"{path}.weight_int8"] = values
        tensors[f"{path}.weight_scale"] = scale
        tensors[f"{path}.weight_zero_point"] = zero_point
        if bias is not None:
            tensors[f"{path}.bias"] = bias.detach().to(torch.float32).clone().contiguous()
    if len(qschemes) > 1:
        raise ValueError(f"mixed weight qschemes {sorted(qschemes)} are not supported")
    paths = set(modules)
    for key, value in qmodel.state_dict().items():
        # quantized modules' own entries (packed params, unused output scale/zero point) are covered above
        if not _under(key, paths):
            # clone: tied/shared tensors would share storage, which save_file refuses
            tensors[key] = value.detach().cpu().clone().contiguous()
    scheme = {
        "scheme": SCHEME,
        "quantized_modules": list(modules),
        "qscheme": qschemes.pop(),
        "weight_dtype": "int8",
        "activation": "dynamic per-tensor uint8",
        "engine": torch.backends.quantized.engine,
    }
    if scheme["qscheme"] == "per_channel_affine":
        scheme["axis"] = 0
    return tensors, scheme


# ------------------------------------------------------------------------------------------- loading


def _take(tensors: dict[str, torch.Tensor], key: str, used: set[str]) -> torch.Tensor:
    """``tensors[key]``, marking it used; a missing key is a :class:`PipelineError` naming it."""
    if key not in tensors:
        raise PipelineError(f"int8 weights: missing tensor '{key}'")
    used.add(key)
    return tensors[key]


def _rebuild_weight(path: str, module: DynamicQuantizedLinear, tensors: dict, scheme: dict, used: set[str]) -> torch.Tensor:
    """The quantized weight of the Linear at ``path``, rebuilt from its stored int8 values and scales."""
    values = _take(tensors, f"{path}.weight_int8", used)
    scale = _take(tensors, f"{path}.weight_scale", used)
    zero_point = _take(tensors, f"{path}.weight_zero_point", used)
    expected = (module.out_features, module.in_features)
    if values.dtype != torch.int8 or tuple(values.shape) != expected:
        raise PipelineError(
            f"int8 weights: '{path}.weight_int8' is {values.dtype} {tuple(values.shape)}, expected int8 {expected}"
        )
    values = values.contiguous()
    if scheme.get("qscheme") == "per_channel_affine":
        axis = int(scheme.get("axis", 0))
        return torch._make_per_channel_quantized_tensor(
            values, scale.to(torch.float64), zero_point.to(torch.int64), axis
        )
    if scale.numel() != 1 or zero_point.numel() != 1:
        raise PipelineError(f"int8 weights: '{path}' per-tensor scale/zero point must hold one value")
    return torch._make_per_tensor_quantized_tensor(values, float(scale.item()), int(zero_point.item()))


def _rebuild_bias(path: str, module: DynamicQuantizedLinear, tensors: dict, used: set[str]) -> torch.Tensor | None:
    """The float32 bias of the Linear at ``path`` (None when the layer has none)."""
    if module.bias() is None:
        return None  # a stray stored bias is then reported as an unexpected key
    bias = _take(tensors, f"{path}.bias", used)
    if tuple(bias.shape) != (module.out_features,):
        raise PipelineError(f"int8 weights: '{path}.bias' has shape {tuple(bias.shape)}, expected ({module.out_features},)")
    return bias.to(torch.float32).contiguous()


def _matching_modules(qmodel: torch.nn.Module, scheme: dict) -> dict[str, DynamicQuantizedLinear]:
    """The model's quantized Linears, checked against ``scheme["quantized_modules"]``."""
    modules = quantized_modules(qmodel)
    listed = list(scheme.get("quantized_modules", []))
    if sorted(listed) != sorted(modules):
        stored_only = sorted(set(listed) - set(modules))
        model_only = sorted(set(modules) - set(listed))
        raise PipelineError(
            f"int8 weights: quantized modules do not match the model (stored only: {stored_only[:5]}, "
            f"model only: {model_only[:5]})"
        )
    return modules


def _load_quantized_(modules: dict[str, DynamicQuantizedLinear], tensors: dict, scheme: dict) -> None:
    """Overwrite every quantized Linear's packed weight and bias from the stored int8 tensors.

    Raises:
        PipelineError: a missing tensor, a wrong dtype or shape, or a stored tensor under a quantized
            module that nothing reads (e.g. a bias for a layer without one).
    """
    used: set[str] = set()
    for path, module in modules.items():
        with _quiet():
            weight = _rebuild_weight(path, module, tensors, scheme, used)
        bias = _rebuild_bias(path, module, tensors, used)
        module.set_weight_bias(weight, bias)
    unexpected = sorted(set(tensors) - used)
    if unexpected:
        raise PipelineError(f"int8 weights: unexpected keys {unexpected[:5]}")


def _load_float_(qmodel: torch.nn.Module, tensors: dict, quantized: set[str]) -> None:
    """Load the tensors outside the quantized modules strictly (missing or unexpected keys are errors).

    Args:
        qmodel: the quantized model.
        tensors: stored tensors that do not belong to a quantized module.
        quantized: paths of the quantized modules.
    """
    current = qmodel.state_dict()
    expected = {k for k in current if not _under(k, quantized)}
    missing = sorted(expected - set(tensors))
    unexpected = sorted(set(tensors) - expected)
    if missing or unexpected:
        raise PipelineError(f"int8 weights: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    # quantized Linears insist on finding their own entries even with strict=False: hand them back their
    # current state; their real weights are set afterwards by _load_quantized_
    full = collections.OrderedDict((k, v) for k, v in current.items() if _under(k, quantized))
    full.update(tensors)
    full._metadata = current._metadata  # module versions: quantized Linears read their layout from it
    try:
        qmodel.load_state_dict(full, strict=True)
    except RuntimeError as err:  # shape mismatch
        raise PipelineError(f"int8 weights: do not fit the model ({str(err)[:300]})") from None


def load_int8_(float_model: torch.nn.Module, tensors: dict[str, torch.Tensor], scheme: dict) -> torch.nn.Module:
    """Rebuild a dynamically quantized model from :func:`int8_tensors` output, consuming ``float_model``.

    ``float_model`` is quantized in place (its Linear layers are swapped for int8 ones, weights are then
    overwritten), so its own weights do not matter: a freshly constructed model is enough.

    Args:
        float_model: float model with the stored architecture, pruned shapes already applied
            (:func:`pipeline.models.structure.apply_config_shapes_`). Moved to CPU float32.
        tensors: name -> tensor, as returned by :func:`int8_tensors` or read back with ``load_file``.
        scheme: the scheme dict returned alongside the tensors.

    Returns:
        The quantized model (the same object as ``float_model``), in eval mode.

    Raises:
        PipelineError: unknown scheme, quantized modules that do not match, missing or unexpected keys,
            wrong dtypes or shapes.
    """
    if scheme.get("scheme") != SCHEME:
        raise PipelineError(f"int8 weights: unknown quantization scheme {scheme.get('scheme')!r}, expected '{SCHEME}'")
    if scheme.get("qscheme") not in ("per_tensor_affine", "per_channel_affine"):
        raise PipelineError(f"int8 weights: unknown weight qscheme {scheme.get('qscheme')!r}")
    qmodel = _quantize_inplace(float_model.to(device="cpu", dtype=torch.float32).eval())
    modules = _matching_modules(qmodel, scheme)
    paths = set(modules)
    _load_float_(qmodel, {k: v for k, v in tensors.items() if not _under(k, paths)}, paths)
    _load_quantized_(modules, {k: v for k, v in tensors.items() if _under(k, paths)}, scheme)
    return qmodel.eval()


def float_weights(tensors: Tensors, scheme: dict, source: str) -> Tensors:
    """The float32 weights the stored int8 values stand for: ``(q - zero_point) * scale`` (per tensor or per
    output row), other tensors unchanged."""
    tensors = dict(tensors)
    for path in scheme["quantized_modules"]:
        try:
            q = tensors.pop(f"{path}.weight_int8").float()
            scale, zero = tensors.pop(f"{path}.weight_scale"), tensors.pop(f"{path}.weight_zero_point")
        except KeyError as err:
            raise PipelineError(f"{source}: missing tensor {err.args[0]!r}") from None
        if scale.numel() > 1:  # per output channel (axis 0)
            scale, zero = scale.unsqueeze(1), zero.unsqueeze(1)
        tensors[f"{path}.weight"] = (q - zero.float()) * scale
    return tensors


# ------------------------------------------------------------------------------------------- kernels


def kernel_for(device: torch.device) -> Kernel:
    """torch's dynamic int8 Linears on the CPU (while ``torch.ao`` has them); torchao's int8 x int8 kernel on
    CUDA (compute capability >= 8.0)."""
    if device.type == "cpu":
        if not hasattr(torch.ao.quantization, "quantize_dynamic"):
            return Kernel(None, "this torch has no torch.ao dynamic int8 any more: use the onnx_int8 export")
        return Kernel(CPU_KERNEL, f"quantized engine {torch.backends.quantized.engine}")
    return cuda_kernel(device, CUDA_KERNEL, (8, 0))


@torch.no_grad()
def _dequantized_(qmodel: torch.nn.Module) -> torch.nn.Module:
    """Swap every dynamic int8 Linear for a float32 Linear holding the weights its int8 values stand for."""
    for path, module in quantized_modules(qmodel).items():
        weight, bias = module._weight_bias()
        linear = torch.nn.Linear(module.in_features, module.out_features, bias=bias is not None)
        linear.weight.copy_(weight.dequantize())
        if bias is not None:
            linear.bias.copy_(bias)
        parent, _, child = path.rpartition(".")
        setattr(qmodel.get_submodule(parent) if parent else qmodel, child, linear)
    return qmodel


def prepare(model: torch.nn.Module, device: torch.device, description: dict) -> Prepared:
    """The loaded model as it is on the CPU (its dynamic int8 Linears are the kernel); on CUDA, rebuilt with
    float Linears of the stored int8 values and handed to torchao's int8 dynamic-activation config (Linears
    with a dimension that is no multiple of 16 stay bf16 matmuls, listed)."""
    kernel = kernel_for(device)
    if device.type != "cpu":
        return torchao_prepare(_dequantized_(model), device, lambda q: q.Int8DynamicActivationInt8WeightConfig(),
                               multiple_of(16), kernel)
    if kernel.name is None:
        raise PipelineError(kernel.reason)
    return Prepared(model, kernel.name, len(quantized_modules(model)), list(linears(model)), "float32")


register(Scheme(
    "dynamic_int8", NoParams,
    quantize=lambda model, params: int8_tensors(quantize_dynamic_int8(model)),
    load=lambda model, tensors, scheme, source: load_int8_(model, tensors, scheme),
    float_state=float_weights, devices=("cpu",), kernel_for=kernel_for, prepare=prepare,
), __name__)
