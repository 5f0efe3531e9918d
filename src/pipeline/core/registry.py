"""Plug-in registries: one module per method, imported only when the method is asked for.

A registry belongs to a package (``pipeline.prune``, ``pipeline.merge``, ``pipeline.quantize``). Each method
lives in its own module of that package, named like the method (``pipeline/prune/magnitude.py`` registers
``magnitude``), and registers an entry when imported. :meth:`Registry.get` imports just that one module, so
a stage running one method loads (and, in ``dvc.yaml``, depends on) that method's file and no other;
:meth:`Registry.all` imports every module of the package, for listings and error messages.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

from pipeline.core.errors import PipelineError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Entries of one kind of plug-in, keyed by name.

    Args:
        package: the package holding one module per entry, e.g. ``"pipeline.prune"``.
        kind: what an entry is, for messages, e.g. ``"pruning method"``.
    """

    def __init__(self, package: str, kind: str):
        self.package, self.kind = package, kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, entry: Entry, module: str) -> Entry:
        """Register ``entry`` under ``name``; ``module`` (the registering module's ``__name__``) must be the
        package's module of that name, so that :meth:`get` finds it without importing anything else.

        Raises:
            ValueError: a second entry of the same name, or an entry registered from another module.
        """
        if module != f"{self.package}.{name}":
            raise ValueError(f"{self.kind} '{name}' must be registered by {self.package}.{name}, not {module}")
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str, key: str = "") -> Entry:
        """The entry ``name``, importing ``<package>.<name>`` if needed.

        Args:
            key: the params key that named it (e.g. ``quantize.scheme``), for the error message.

        Raises:
            PipelineError: no module of that name registers it (the message lists the known names).
        """
        if name not in self._entries and name.isidentifier():
            try:
                importlib.import_module(f"{self.package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{self.package}.{name}":  # the module exists but an import inside it failed
                    raise
        if name not in self._entries:
            where = f"params.yaml: '{key}': " if key else ""
            raise PipelineError(f"{where}unknown {self.kind} '{name}' (known: {', '.join(self.names())})")
        return self._entries[name]

    def all(self) -> dict[str, Entry]:
        """Every entry of the package, by name (imports all of its modules)."""
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{info.name}")
        return dict(sorted(self._entries.items()))

    def names(self) -> list[str]:
        """Sorted names of every entry."""
        return list(self.all())
