"""Modeling code that lets plain transformers load a structurally pruned artifact.

A structurally pruned artifact (heads or FFN neurons removed, shapes recorded in ``config.json``) gets a
copy of :mod:`pipeline.models.pruned_modeling` as ``modeling_pruned.py``, written for its family (the
adapter's head classes and layer layout), and an ``auto_map`` naming it for ``AutoConfig`` and the family's
``AutoModelFor...`` classes. A user with only transformers then loads it with ``trust_remote_code=True``.
The pipeline's own loader (:func:`pipeline.artifacts.load_model`) never runs that file: it rebuilds the
shapes with :func:`pipeline.models.structure.apply_config_shapes_`.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

from transformers import PretrainedConfig

from pipeline.models import families, pruned_modeling
from pipeline.models.structure import FFN_ATTR, HEADS_ATTR

FILE = "modeling_pruned.py"
MODULE = FILE.removesuffix(".py")
AUTO_CLASSES = {"mlm": ("AutoModelForMaskedLM", "PrunedForMaskedLM"),
                "classification": ("AutoModelForSequenceClassification", "PrunedForSequenceClassification"),
                "qa": ("AutoModelForQuestionAnswering", "PrunedForQuestionAnswering")}


def is_structurally_pruned(config: PretrainedConfig) -> bool:
    """Whether ``config`` records a head or FFN size below the family's full size in some layer."""
    family = families.of(config)
    heads = getattr(config, HEADS_ATTR, None) or []
    neurons = getattr(config, FFN_ATTR, None) or []
    return any(h != family.full_heads(config) for h in heads) or any(n != family.full_ffn(config) for n in neurons)


def auto_map(config: PretrainedConfig) -> dict[str, str]:
    """``auto_map`` entries for ``AutoConfig`` and the family's task heads (``modeling_pruned.<class>``)."""
    family = families.of(config)
    entries = {"AutoConfig": f"{MODULE}.PrunedConfig"}
    entries |= {auto: f"{MODULE}.{cls}" for head, (auto, cls) in AUTO_CLASSES.items() if head in family.heads}
    return entries


def modeling_source(config: PretrainedConfig) -> str:
    """The text of ``modeling_pruned.py`` for ``config``'s family: :mod:`pipeline.models.pruned_modeling` with its
    ``CLASSES`` and ``LAYOUT`` lines set from the family adapter.

    Raises:
        ValueError: the template lost one of the two lines it must define (a bug, caught by the tests).
    """
    family = families.of(config)
    classes = {"config": family.config_class.__name__}
    classes |= {head: family.heads[head].__name__ for head in AUTO_CLASSES if head in family.heads}
    source = inspect.getsource(pruned_modeling)
    for name, value in (("CLASSES", classes), ("LAYOUT", family.layout())):
        # The template's assignment may span lines; it ends at the first "}" that ends a line.
        pattern = re.compile(rf"^{name} = \{{.*?\}}\n", re.S | re.M)
        source, count = pattern.subn(lambda _: f"{name} = {value!r}\n", source, count=1)
        if count != 1:
            raise ValueError(f"{pruned_modeling.__file__}: no '{name} = {{...}}' assignment to fill in")
    return source


@contextlib.contextmanager
def attached(config: PretrainedConfig, plain_weights: bool) -> Iterator[str | None]:
    """While saving: ``config.auto_map`` names the modeling code of a structurally pruned model stored as a
    plain state dict (``plain_weights``), and is absent otherwise (a quantized copy of a pruned model is
    read by the pipeline only). Yields the modeling file's text to write beside ``config.json``, or None.
    The config's own ``auto_map`` is restored afterwards."""
    had, before = hasattr(config, "auto_map"), getattr(config, "auto_map", None)
    code = modeling_source(config) if plain_weights and is_structurally_pruned(config) else None
    if code is not None:
        config.auto_map = auto_map(config)
    elif had:
        del config.auto_map
    try:
        yield code
    finally:
        if had:
            config.auto_map = before
        elif hasattr(config, "auto_map"):
            del config.auto_map


def write_code(out: Path, code: str | None) -> None:
    """Write ``modeling_pruned.py`` into the artifact directory ``out`` when :func:`attached` gave code."""
    if code is not None:
        (Path(out) / FILE).write_text(code)
