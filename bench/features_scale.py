"""Wall time and peak memory of building a stage's TRAINING features at full GLUE/SQuAD size.

Cases (each in a fresh process, so its peak RSS is its own):

- ``mnli``: 392,702 MNLI pairs, ``max_length`` 128 (:class:`pipeline.tasks.classification.ClassificationTask`);
- ``squad``: 87,599 SQuAD v1.1 questions, ``max_length`` 384, ``doc_stride`` 128 (:class:`pipeline.tasks.qa.QATask`);
- ``sst2`` (on request): 67,349 sentences, ``max_length`` 128.

The data come from ``bench/scale_data.py`` (generated offline in the real file layouts), go through the
``prepare`` stage's code (:func:`pipeline.data.sources.fetch`, written as JSON lines) once, and are then read
as a training stage reads them (``task.rows(data, "train")``) and encoded (``task.train_features``) with the
project's ``synthetic`` WordPiece tokenizer saved and loaded as the tokenizer stage's output. Targets of
issue 21: <= 60 s and <= 2 GB per case on the 2-core CPU.

Prints one JSON line per case: ``{bench, case, rows, features, tokens, read_s, features_s, cpu_s,
rss_start_mb, rss_after_read_mb, peak_rss_mb, target_s, target_mb, within_target, loadavg}``; ``cpu_s`` is the CPU time
(user + system, all threads) of reading and encoding, a number that other processes on a shared machine change
less than the wall times; ``rss_start_mb`` is the process after its imports (torch, transformers), before
reading; ``loadavg`` is ``/proc/loadavg``'s 1-minute load at the end.

    python bench/features_scale.py                       # full size (data cached in --work)
    python bench/features_scale.py --small               # 0.2% of the rows, a smoke test
    python bench/features_scale.py --cases mnli sst2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

TARGET_S, TARGET_MB = 60.0, 2048.0
# case -> (prepared data set, prepare.datasets entry, tasks.<name> params)
CASES = {
    "mnli": ("mnli", {"type": "classification", "folder": "MNLI", "glue": "mnli"},
             {"type": "classification", "glue": "mnli", "num_labels": 3, "max_length": 128}),
    "squad": ("squad", {"type": "qa", "folder": "SQuAD"}, {"type": "qa", "max_length": 384, "doc_stride": 128}),
    "sst2": ("sst2", {"type": "classification", "folder": "SST-2", "glue": "sst2"},
             {"type": "classification", "glue": "sst2", "num_labels": 2, "max_length": 128}),
}


def prepare(work: Path, scale: float, cases: list[str]) -> Path:
    """Generate (``scale_data.py``) and prepare the data sets of ``cases`` under ``work`` unless already there;
    returns the prepared data directory (``<dir>/tokenizer``, ``<dir>/<data set>/train.jsonl``)."""
    from pipeline.data.io import write_jsonl
    from pipeline.data.params import DataSource
    from pipeline.data.sources import fetch
    from pipeline.data.vocab import build_tokenizer

    raw, out = work / f"raw-{scale}", work / f"prepared-{scale}"
    build_tokenizer(out / "tokenizer")
    for case in cases:
        name, source, _ = CASES[case]
        if (out / name / "train.jsonl").is_file():
            continue
        folder = source["folder"]
        if not (raw / folder).is_dir():
            subprocess.run([sys.executable, str(BENCH / "scale_data.py"), str(raw), "--scale", str(scale), "--only",
                            name], check=True, stdout=subprocess.DEVNULL)
        src = DataSource(type=source["type"], source=str(raw / folder), glue=source.get("glue", ""))
        tmp = out / f"{name}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for split, rows in fetch(src, name, 0).items():
            write_jsonl(tmp / f"{split}.jsonl", rows)
        tmp.rename(out / name)
    return out


def measure(case: str, data: Path) -> dict:
    """Read the train split and build its training features as a stage does; time and memory of each."""
    from pipeline import tasks
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline.tasks import TaskParams

    name, _, raw_params = CASES[case]
    params = TaskParams.params_for(raw_params, f"tasks.{case}")(**raw_params)
    task, tokenizer = tasks.get(params), load_tokenizer(data / "tokenizer")
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    rows = task.rows(data / name, "train")
    read_s = time.perf_counter() - start
    after_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    feats = task.train_features(rows, tokenizer)
    features_s = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    return {"bench": "features_scale", "case": case, "rows": len(rows), "features": len(feats),
            "tokens": int(feats.lengths.sum()), "read_s": round(read_s, 2), "features_s": round(features_s, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2),
            "rss_start_mb": round(before.ru_maxrss / 1024, 1), "rss_after_read_mb": round(after_read, 1),
            "peak_rss_mb": round(peak, 1), "target_s": TARGET_S, "target_mb": TARGET_MB,
            "within_target": read_s + features_s <= TARGET_S and peak <= TARGET_MB,
            "loadavg": float(Path("/proc/loadavg").read_text().split()[0])}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["mnli", "squad"])
    p.add_argument("--small", action="store_true", help="0.2%% of the rows in a temporary folder (a smoke test)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "features_scale",
                   help="where the generated and prepared data are kept between runs")
    p.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one case in this (fresh) process
    p.add_argument("--prepare", type=float, help=argparse.SUPPRESS)  # internal: prepare at this scale
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.data), allow_nan=False))
        return
    if args.prepare:
        print(prepare(args.work, args.prepare, args.cases))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work, scale = (Path(tmp), 0.002) if args.small else (args.work, 1.0)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        # Linux carries a process's peak RSS over exec (ru_maxrss): this launcher stays small (no torch, no
        # data) and the preparation runs in its own process, so each case's peak is its own.
        data = Path(subprocess.run([sys.executable, __file__, "--prepare", str(scale), "--work", str(work), "--cases",
                                    *args.cases], env=env, check=True, capture_output=True, text=True).stdout.strip())
        for case in args.cases:
            out = subprocess.run([sys.executable, __file__, "--measure", case, "--data", str(data)], env=env,
                                 check=True, capture_output=True, text=True)
            print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
