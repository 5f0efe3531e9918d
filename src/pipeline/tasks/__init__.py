"""Tasks: what a classification or QA task reads, how it is trained and scored (:class:`base.Task`).

Task types are plug-ins of :data:`TYPES` (:mod:`pipeline.core.registry`): the type ``N`` of ``tasks.<name>.type``
is the :class:`base.Task` subclass that ``pipeline/tasks/<N>.py`` registers with :func:`register`
(``classification``, ``qa``), with its params class (a :class:`TaskParams` subclass) as ``params_type``. Adding a
task type is one new file here. The loader picks the params class from ``type`` (:meth:`TaskParams.params_for`),
and :func:`get` turns the params into the task object.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.registry import Registry

TYPES: Registry[type] = Registry("pipeline.tasks", "task type")
"""Every task type by name (``tasks.<name>.type``): :class:`base.Task` subclasses, one per module."""


def register(name: str):
    """Class decorator: register a :class:`base.Task` subclass as task type ``name`` (call it from
    ``pipeline/tasks/<name>.py``)."""

    def add(cls: type) -> type:
        cls.type_name = name
        return TYPES.add(name, cls, cls.__module__)

    return add


@dataclass
class TaskParams:
    """How a task is tokenised, modelled and scored (``tasks.<name>``); ``type`` picks the subclass."""

    type: str
    """A registered task type (:data:`TYPES`: ``classification`` or ``qa``); must match the ``prepare.datasets``
    entry."""
    max_length: int = 128
    """Longest model input in tokens (QA: per window)."""

    @classmethod
    def params_for(cls, raw: dict, key: str) -> type[TaskParams]:
        """The params class of the task type named in ``raw["type"]`` (the loader calls this).

        Raises:
            PipelineError: ``params.yaml: '<key>.type': unknown task type '<type>' (known: ...)``.
        """
        return TYPES.get(raw.get("type"), f"{key}.type").params_type

    def __post_init__(self):
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}")


def get(params: TaskParams):
    """The task object (a :class:`base.Task`) configured by ``params``: an instance of the class registered for
    ``params.type``."""
    return TYPES.get(params.type)(params)
