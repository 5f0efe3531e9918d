"""Primary task metrics of two pipeline runs side by side (e.g. a GPU run against a CPU run of the same targets).

Reads ``<metrics>/eval/<task>/<variant>.json`` (the evaluate stage's metrics files) of each run and prints one
JSON line per variant evaluated in the first run: ``{task, variant, metric, device, value}`` (device: where the task metrics were computed, ``eval_device``) and, with a
second run, ``other_device``, ``other_value`` and ``difference`` (first minus second, in the metric's units:
accuracy and exact match are fractions in [0, 1]).

    python bench/compare_metrics.py /tmp/gpu_repro/metrics                 # one run: its metrics and devices
    python bench/compare_metrics.py gpu/metrics cpu/metrics                # the difference per variant
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def primary(path: Path) -> dict:
    """``{metric, device, value}`` of one metrics file (value None when the metric is missing)."""
    data = json.loads(path.read_text())
    metric = data.get("primary_metric")
    return {"metric": metric, "device": data.get("eval_device"), "value": data.get(metric)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", type=Path, help="the first run's metrics directory")
    p.add_argument("other", type=Path, nargs="?", help="the second run's metrics directory")
    args = p.parse_args(argv)
    files = sorted((args.metrics / "eval").glob("*/*.json"))
    if not files:
        print(f"{args.metrics / 'eval'}: no metrics files", file=sys.stderr)
        return 1
    for path in files:
        row = {"task": path.parent.name, "variant": path.stem, **primary(path)}
        twin = args.other / "eval" / path.parent.name / path.name if args.other else None
        if twin is not None and twin.is_file():
            other = primary(twin)
            row |= {"other_device": other["device"], "other_value": other["value"]}
            if row["value"] is not None and other["value"] is not None:
                row["difference"] = round(row["value"] - other["value"], 6)
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
