"""One error type for everything a user can get wrong, and the stage wrapper that reports it.

A stage that fails on bad input prints exactly one line naming the culprit (a params key, a file)
and exits non-zero; tracebacks are for bugs, not for a typo in ``params.yaml``.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable


class PipelineError(Exception):
    """A user-facing error: bad params, missing or corrupt inputs, incompatible artifacts."""


def stage_main(name: str) -> Callable[[Callable[..., None]], Callable[..., int]]:
    """Decorate a stage's ``main`` so a :class:`PipelineError` becomes one line on stderr and exit 2.

    A successful run ends with one line on stderr giving the stage's wall time (after imports).

    Args:
        name: the stage name printed in front of the message, e.g. ``"prune"``.
    """

    def wrap(fn: Callable[..., None]) -> Callable[..., int]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> int:
            start = time.perf_counter()
            try:
                fn(*args, **kwargs)
            except PipelineError as err:
                print(f"error: {name}: {err}", file=sys.stderr)
                return 2
            print(f"{name}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            return 0

        return run

    return wrap
