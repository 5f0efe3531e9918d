"""Plug-in registries: one module per method, imported only when the method is asked for.

Every kind of plug-in is found by one rule. A registry belongs to the package holding its plug-ins (merge
and pruning methods, quantization schemes, runtime formats, task types, model families: ``pipeline.merge``,
``pipeline.prune``, ``pipeline.quantize``, ``pipeline.export``, ``pipeline.tasks``,
``pipeline.models.families``) and is defined in that package's ``__init__``. An entry named ``N`` lives in the
module ``<package>.<N>``, with ``-`` written ``_`` (``pipeline/prune/magnitude.py`` registers ``magnitude``,
``pipeline/models/families/deberta_v2.py`` the model type ``deberta-v2``), and registers itself when imported. :meth:`Registry.get` imports just that one module, so
a stage running one method loads (and, in ``dvc.yaml``, depends on) that method's file and no other;
:meth:`Registry.all` imports every module of the package, for listings and error messages.
"""

from __future__ import annotations

import importlib
import importlib.util
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

    def module(self, name: str) -> str:
        """The module that registers the entry ``name``: ``<package>.<name>`` with ``-`` written ``_``."""
        return f"{self.package}.{name.replace('-', '_')}"

    def add(self, name: str, entry: Entry, module: str) -> Entry:
        """Register ``entry`` under ``name``; ``module`` (the registering module's ``__name__``) must be
        :meth:`module` of that name, so that :meth:`get` finds it without importing anything else.

        Raises:
            ValueError: a second entry of the same name, or an entry registered from another module.
        """
        if module != self.module(name):
            raise ValueError(f"{self.kind} '{name}' must be registered by {self.module(name)}, not {module}")
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str, key: str = "") -> Entry:
        """The entry ``name``, importing its :meth:`module` if needed.

        Args:
            key: the params key that named it (e.g. ``quantize.scheme``), for the error message.

        Raises:
            PipelineError: no module of that name registers it, one line:
                ``params.yaml: '<key>': unknown <kind> '<name>' (known: <every name>)`` (without ``key``, from
                ``unknown`` on).
        """
        if not isinstance(name, str):
            name = str(name)  # a YAML number or null: never a module name, reported as written
        elif name not in self._entries and name.replace("-", "_").isidentifier():
            try:
                importlib.import_module(self.module(name))
            except ModuleNotFoundError as err:
                if err.name != self.module(name):  # the module exists but an import inside it failed
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

    def find(self, name: str) -> Entry | None:
        """The entry ``name`` when its module exists and registers it, else None (no error): for a name that may
        belong to another registry (an artifact's ``format``: a runtime format or a quantization scheme)."""
        if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
            return None
        if name not in self._entries and importlib.util.find_spec(self.module(name)) is not None:
            importlib.import_module(self.module(name))
        return self._entries.get(name)
