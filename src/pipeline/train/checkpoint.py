"""Resumable training checkpoints without pickle: tensors in SafeTensors, everything else in strict JSON.

Checkpoints sit beside outputs, on filesystems other machines share, so reading one must never run code
(``torch.load(weights_only=False)`` and ``accelerate``'s ``save_state``/``load_state`` unpickle; the latter
pickles the RNG states). Layout of ``<out>.ckpt/``:

- ``state.json``: ``{"format", "tensors": <file name>, "sha256": <of that file>, "state": <tree>}``. The tree
  holds the fingerprint, step counters, epoch history, curve rows, optimizer param groups, scheduler and hook
  state; each tensor in it is ``{"$tensor": <name>}``, a tuple ``{"$tuple": [...]}``, a dict with integer keys
  (optimizer state) ``{"$int_keys": {...}}``.
- ``tensors-<sha256 prefix>.safetensors``: the tensors: ``model/<param>``, ``optimizer/state/<i>/<name>``,
  ``rng/<generator>`` (one row per process, see :func:`rng_state`), ``hook/...``.

A save writes the tensor file under a new (content-addressed) name, then replaces ``state.json`` atomically,
then removes older tensor files: ``state.json`` is the commit point, so a kill at any moment leaves the
previous checkpoint readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_write_text, clean_stale_tmp, file_hash

FORMAT = "pipeline-train-checkpoint/1"
INDEX = "state.json"
LEGACY = "state.pt"  # the pickle checkpoints of earlier versions: never read
TENSOR_FILE = re.compile(r"tensors-[0-9a-f]{16}\.safetensors")
# What reading a damaged or hand-made checkpoint can raise (json/safetensors parsing, missing keys, wrong
# shapes or types in load_state_dict/set_state, RecursionError from deep nesting); each becomes one
# "delete the checkpoint" line.
DAMAGE = (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError, IndexError, AttributeError,
          OverflowError)


def fingerprint(args: TrainArgs, num_examples: int, world_size: int, desc: str) -> str:
    """What a checkpoint must match to be resumed (settings that do not change results are left out)."""
    keep = {k: v for k, v in asdict(args).items() if k not in ("checkpoint_every", "compile")}
    raw = json.dumps([keep, num_examples, world_size, desc], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def unreadable(ckpt: Path, err: BaseException | str) -> PipelineError:
    """The one-line error for a checkpoint that cannot be used (damaged, truncated, hand-made)."""
    reason = " ".join(str(err).split())[:300] or type(err).__name__  # one line, however long the cause
    return PipelineError(f"{ckpt} is not a usable checkpoint ({reason}); delete {ckpt} to start over")


def encode(tree: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``tree`` as strict-JSON values; its tensors move to ``tensors`` (CPU, contiguous) under their path.

    Args:
        tree: nested dicts (string or integer keys), lists, tuples, tensors, str, int, finite float, bool, None.
        path: name of ``tree``; a tensor inside it is named by its ``/``-separated keys below ``path``.

    Raises:
        TypeError: a value of another type (e.g. a NumPy array: convert it to a tensor first).
    """
    def sub(key) -> str:
        return f"{path}/{key}" if path else str(key)

    if isinstance(tree, torch.Tensor):
        tensors[path] = tree.detach().to("cpu").contiguous()
        return {"$tensor": path}
    if isinstance(tree, tuple):
        return {"$tuple": [encode(v, sub(i), tensors) for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [encode(v, sub(i), tensors) for i, v in enumerate(tree)]
    if isinstance(tree, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in tree):
            return {k: encode(v, sub(k), tensors) for k, v in tree.items()}
        if all(isinstance(k, int) and not isinstance(k, bool) for k in tree):
            return {"$int_keys": {str(k): encode(v, sub(k), tensors) for k, v in tree.items()}}
        raise TypeError(f"checkpoint: keys of {path or 'the state'} must be all strings or all integers")
    if tree is None or isinstance(tree, (str, bool, int, float)):
        return tree
    raise TypeError(f"checkpoint: {path} is a {type(tree).__name__}, not a tensor or JSON value")


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with copies of those sharing memory with an earlier one (tied weights, views of one
    buffer): safetensors refuses shared memory."""
    seen, out = set(), {}
    for name, t in tensors.items():
        ptr = t.untyped_storage().data_ptr()
        out[name] = t.clone() if t.numel() and ptr in seen else t
        seen.add(ptr)
    return out


def decode(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode`.

    Raises:
        ValueError: the tree names a tensor that ``tensors`` lacks.
    """
    if isinstance(node, list):
        return [decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if node.keys() == {"$tensor"}:
        if node["$tensor"] not in tensors:
            raise ValueError(f"no tensor {node['$tensor']!r} in the tensor file")
        return tensors[node["$tensor"]]
    if node.keys() == {"$tuple"}:
        return tuple(decode(v, tensors) for v in node["$tuple"])
    if node.keys() == {"$int_keys"}:
        return {int(k): decode(v, tensors) for k, v in node["$int_keys"].items()}
    return {k: decode(v, tensors) for k, v in node.items()}


def save(ckpt: Path, state: dict) -> None:
    """Write ``state`` (see :func:`encode` for what it may hold) as the checkpoint in ``ckpt``, atomically.

    Raises:
        ValueError: ``state`` holds a NaN or infinite float outside tensors (strict JSON).
    """
    ckpt.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = encode(state, "", tensors)
    text = json.dumps(tree, allow_nan=False, separators=(",", ":"))  # fails before anything is written
    clean_stale_tmp(ckpt / "tensors")
    tmp = ckpt / f".tensors.tmp-{os.getpid()}"
    save_file(_unshared(tensors), str(tmp))
    digest = file_hash(tmp)
    name = f"tensors-{digest[:16]}.safetensors"
    os.replace(tmp, ckpt / name)
    index = f'{{"format":{json.dumps(FORMAT)},"tensors":"{name}","sha256":"{digest}","state":{text}}}\n'
    atomic_write_text(ckpt / INDEX, index)  # the commit point
    for old in ckpt.glob("tensors-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _strict_json(text: str) -> Any:
    def refuse(constant: str):
        raise ValueError(f"{constant} is not strict JSON")

    return json.loads(text, parse_constant=refuse)


def read_index(ckpt: Path) -> dict | None:
    """The parsed ``state.json`` of ``ckpt`` (tensors not read yet), or None when there is none.

    Raises:
        PipelineError: it is not valid strict JSON of this format (see :func:`unreadable`).
    """
    path = ckpt / INDEX
    if not path.is_file():
        return None
    try:
        index = _strict_json(path.read_text())
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ValueError(f"{INDEX} is not a {FORMAT} index")
        if not isinstance(index.get("tensors"), str) or not TENSOR_FILE.fullmatch(index["tensors"]):
            raise ValueError(f"{INDEX} names no tensor file")  # also refuses paths outside ckpt
        if not isinstance(index.get("state"), dict) or not isinstance(index["state"].get("fingerprint"), str):
            raise ValueError(f"{INDEX} holds no fingerprint")
    except (ValueError, OSError, RecursionError) as err:
        raise unreadable(ckpt, err) from err
    return index


def read_state(ckpt: Path, index: dict) -> dict:
    """The full saved state of ``ckpt`` (tensors on the CPU) for an ``index`` from :func:`read_index`.

    Raises:
        PipelineError: the tensor file is missing, altered (sha256), or not SafeTensors; or the tree names a
            tensor the file lacks.
    """
    path = ckpt / index["tensors"]
    try:
        if file_hash(path) != index.get("sha256"):
            raise ValueError(f"{path.name} does not match its sha256 in {INDEX}")
        return decode(index["state"], load_file(str(path)))
    except DAMAGE as err:
        raise unreadable(ckpt, err) from err


def rng_state(collate_fn) -> dict[str, torch.Tensor]:
    """This process's random generators as tensors whose shapes are the same on every process (so they can
    be gathered): torch, CUDA (when present), the collator's ``generator`` (when it has one), Python's and
    NumPy's Mersenne Twisters (their integer state as int64, the cached Gaussian as float64)."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor([version, *mt], dtype=torch.int64),
        "python_gauss": torch.tensor([gauss is not None, gauss or 0.0], dtype=torch.float64),
        "numpy": torch.from_numpy(keys.astype(np.int64)),
        "numpy_pos": torch.tensor([pos, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor([cached], dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    gen = getattr(collate_fn, "generator", None)
    if isinstance(gen, torch.Generator):
        state["collate"] = gen.get_state()
    return state


def set_rng_state(rng: dict[str, torch.Tensor], rank: int, collate_fn) -> None:
    """Restore process ``rank``'s generators from gathered :func:`rng_state` tensors (``[world, ...]`` each).

    Raises:
        RuntimeError, ValueError, TypeError, IndexError, OverflowError: states of the wrong size, type or range
            (a damaged file).
    """
    # Copies, not views into the gathered rows: torch's set_state ignores a view's storage offset (it reads
    # another row's bytes, or crashes - measured with torch 2.13).
    row = {k: v[rank].clone() for k, v in rng.items()}
    torch.set_rng_state(row["torch"].to(torch.uint8))
    mt, (has_gauss, gauss) = row["python"].tolist(), row["python_gauss"].tolist()
    random.setstate((mt[0], tuple(mt[1:]), gauss if has_gauss else None))
    pos, np_has_gauss = row["numpy_pos"].tolist()
    np.random.set_state(("MT19937", row["numpy"].numpy().astype(np.uint32), pos, np_has_gauss,
                         float(row["numpy_gauss"][0])))
    if "cuda" in row and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.clone() for state in row["cuda"].to(torch.uint8)])
    if "collate" in row:
        collate_fn.generator.set_state(row["collate"].to(torch.uint8))
