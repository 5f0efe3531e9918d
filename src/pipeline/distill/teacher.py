"""The distillation teacher's params (``teacher.<task>``): the model the ``teacher`` stage trains on one task,
for the ``distill`` stage to learn from (:mod:`pipeline.distill.kd`).

Its own module, not :mod:`pipeline.distill.kd`: the ``teacher`` stage reads only these params, so its code deps
stay the two dataclasses they hold (architecture from :mod:`pipeline.models.build`, training from
:mod:`pipeline.config.args`), not the distillation losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config.args import TrainArgs
from pipeline.models.build import ArchParams


@dataclass
class TeacherParams:
    """The distillation teacher of one task (``teacher.<task>``): its architecture and its training."""

    arch: ArchParams = field(default_factory=ArchParams)
    train: TrainArgs = field(default_factory=TrainArgs)
