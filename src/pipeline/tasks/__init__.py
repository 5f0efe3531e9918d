"""Tasks: what a classification or QA task reads, how it is trained and scored (:class:`base.Task`).

:func:`get` turns the ``tasks.<name>`` params into the task object; both task types are imported here, so
the loader can pick the params class from ``type`` wherever tasks are used.
"""

from __future__ import annotations

from pipeline.tasks import classification, qa  # noqa: F401  (registers the task types)
from pipeline.tasks.base import TYPES, Task, TaskParams


def get(params: TaskParams) -> Task:
    """The task object configured by ``params`` (its class is the one registered for ``params.type``)."""
    return TYPES[params.type](params)
