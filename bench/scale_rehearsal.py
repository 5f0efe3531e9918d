"""The scale rehearsal: the REAL pipeline (``dvc repro``) at BERT-base shapes on full-size data, stage by stage.

In a temporary clean copy of the repository (as ``bench/dvc_repro_time.py`` makes it), with:

- the student ``model``: scratch BERT-base shapes (hidden 768, 12 layers, 12 heads, FFN 3072, 512 positions),
  the teachers ``teacher.<task>.arch``: scratch BERT-large shapes (1024/24/16/4096), random init from configs,
  the project's ``synthetic`` WordPiece tokenizer;
- full-size data from ``bench/scale_data.py`` in the real layouts: ``cls`` = GLUE MNLI (392,702 train pairs,
  ``max_length`` 128, 3 labels), ``qa`` = SQuAD v1.1 (87,599 train questions, ``max_length`` 384, stride 128);
  the pretraining corpus stays the embedded synthetic one (4,000/400 rows);
- every training section capped at :data:`MAX_STEPS` optimizer step(s) (``max_steps``, pretraining included).

What is CAPPED, and why (a 2-core CPU; all of it printed in the summary line's ``caps``): the validation
splits (:data:`CAPS`: MNLI's two dev sets to 256 pairs each, SQuAD dev to 128 questions), because every
training stage scores the validation split after its epoch and a BERT-base/large forward pass over the full
dev sets (9,815 + 9,832 pairs, 10,570 questions) takes tens of minutes per pass on this CPU; the
importance batches of heads/FFN pruning (4 instead of 8, each a BERT-base forward+backward); and the stage
list (:func:`stage_list`): one branch per pruning method (magnitude, gradual, heads, ffn), distillation and
dynamic int8 of the heads branch only, two evaluations per task (finetune and the quantized variant), no
ONNX export, then the report. Training batch sizes, sequence lengths and the full training splits (all of
them are encoded by every training stage) are the real ones.

Each stage runs alone, in DAG order, as ``dvc repro --single-item <stage>`` in a fresh wrapper process, so
that its ``wall_s`` (the ``dvc`` call, hashing included) and ``peak_rss_mb`` (``RUSAGE_CHILDREN`` max RSS
of the wrapper: the largest single process of the stage's tree, not a sum) are its own. ``model_s`` comes
from the library's profiler (:mod:`pipeline.core.profile`, env ``PIPELINE_PROFILE``): seconds in the
training loop's forward+backward and in validation forward passes; ``outside_s = wall_s - model_s`` is
everything else (start-up and imports, reading, tokenization, importance, masks, timing, export, writing).
A stage that would start after ``--time-limit`` is skipped, one that runs past it is stopped; both are
labelled in the output (a partial table, honestly labelled).

One JSON line per stage ``{bench, stage, status, wall_s, peak_rss_mb, model_s, outside_s}``, then a summary
line (total wall time, threads, load average, caps, targets met); ``--markdown`` also prints a table.

    python bench/scale_rehearsal.py --markdown               # full size, about 35 minutes on 2 CPU cores
    python bench/scale_rehearsal.py --small                  # tiny shapes, 0.2% of the data: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import ROOT, emit
from dvc_repro_time import environment, run

sys.path.insert(0, str(ROOT / "tests"))
from clean_copy import clean_copy  # noqa: E402

MAX_STEPS = 1
CAPS = {"prepare.datasets.cls.validation_size": 256, "prepare.datasets.qa.validation_size": 128,
        "prune.heads.batches": 4, "prune.ffn.batches": 4}
BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
        "max_position_embeddings": 512}
LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
         "max_position_embeddings": 512}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": 512}
TINY_TEACHER = {"hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96,
                "max_position_embeddings": 512}
TASKS = {"cls": {"type": "classification", "max_length": 128, "num_labels": 3, "glue": "mnli"},
         "qa": {"type": "qa", "max_length": 384, "doc_stride": 128}}
# Issue 21's targets that this run measures (the features targets: bench/features_scale.py).
FINETUNE_TARGET = {"stage": "finetune@cls", "wall_s": 120.0, "peak_rss_mb": 4096.0}
RSS_LIMIT_MB = 8192.0
WRAPPER = ("import resource, subprocess, sys\n"
           "rc = subprocess.run(sys.argv[2:]).returncode\n"
           "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
           "sys.exit(rc)\n")


def stage_list() -> list[str]:
    """The stages run, in an order DVC's DAG allows, both tasks advanced together so a time limit cuts late
    stages of both rather than all of ``qa``."""
    head = ["tokenizer", "prepare@corpus", "prepare@cls", "prepare@qa", "base", "pretrain@a", "pretrain@b", "merge"]
    per_task = ["finetune@{t}", "evaluate@{t}-finetune", "prune@{t}-magnitude", "prune@{t}-gradual",
                "prune@{t}-heads", "prune@{t}-ffn", "teacher@{t}", "distill@{t}-heads",
                "quantize@{t}-dynamic_int8-distill-heads", "evaluate-quantize@{t}-dynamic_int8-distill-heads"]
    return head + [s.format(t=t) for s in per_task for t in ("cls", "qa")] + ["report"]


def set_key(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value


def rehearsal_params(params: dict, raw: Path, small: bool) -> dict:
    """The embedded default's params with the rehearsal's shapes, data, ``max_steps`` and :data:`CAPS`."""
    params["model"].update(base="scratch", type="bert", **(TINY if small else BASE))
    params["prepare"]["datasets"]["cls"] = {"type": "classification", "source": str(raw / "MNLI"), "glue": "mnli"}
    params["prepare"]["datasets"]["qa"] = {"type": "qa", "source": str(raw / "SQuAD")}
    params["tasks"]["cls"].update(TASKS["cls"])
    params["tasks"]["qa"].update(TASKS["qa"])
    params["pretrain"]["train"]["max_steps"] = MAX_STEPS
    for task in ("cls", "qa"):
        params["finetune"][task]["max_steps"] = MAX_STEPS
        params["teacher"][task]["arch"] = {"base": "scratch", **(TINY_TEACHER if small else LARGE), "seed": 0}
        params["teacher"][task]["train"]["max_steps"] = MAX_STEPS
        params["distill"]["train"][task]["max_steps"] = MAX_STEPS
    params["prune"]["gradual"]["train"]["max_steps"] = MAX_STEPS
    for key, value in CAPS.items():
        set_key(params, key, value)
    return params


def make_data(data: Path, scale: float) -> Path:
    """``bench/scale_data.py``'s MNLI and SQuAD at ``scale`` under ``data`` (kept between runs); their folder."""
    raw = data / f"raw-{scale}"
    for name, folder in (("mnli", "MNLI"), ("squad", "SQuAD")):
        if not (raw / folder).is_dir():
            subprocess.run([sys.executable, str(ROOT / "bench" / "scale_data.py"), str(raw), "--scale", str(scale),
                            "--only", name], check=True, stdout=subprocess.DEVNULL)
    return raw


def run_stage(repo: Path, stage: str, env: dict, limit_s: float) -> tuple[str, float, float | None]:
    """``dvc repro --single-item stage`` in a fresh wrapper process: ``(status, wall_s, peak_rss_mb)``;
    status ``ok``, ``failed (rc N)`` or ``stopped at the time limit`` (the stage's process group killed)."""
    rss_file = repo.parent / "rss.txt"
    rss_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", WRAPPER, str(rss_file), "dvc", "repro", "--single-item", stage]
    log = repo.parent / "logs" / f"{stage.replace('@', '_')}.log"
    log.parent.mkdir(exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit_s)
            status = "ok" if rc == 0 else f"failed (rc {rc}, log {log})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this call started: the wrapper, dvc and the stage
            proc.wait()
            status = "stopped at the time limit"
    wall = time.perf_counter() - start
    # a stopped stage's wrapper wrote nothing: no RSS (None, not NaN: the lines stay strict JSON)
    rss = round(int(rss_file.read_text()) / 1024, 1) if rss_file.is_file() else None
    return status, wall, rss


def model_seconds(profile: Path, stage: str) -> float | None:
    """Sum of ``model_s`` over the profiler lines of ``stage`` (one per process); None if it wrote none."""
    if not profile.is_file():
        return None
    lines = [json.loads(line) for line in profile.read_text().splitlines() if line.strip()]
    found = [r["model_s"] for r in lines if r["stage"] == stage]
    return round(sum(found), 2) if found else None


def rehearse(repo: Path, stages: list[str], env: dict, deadline: float) -> list[dict]:
    """Run ``stages`` one by one until ``deadline`` (``time.perf_counter()``); one emitted record each."""
    profile = Path(env["PIPELINE_PROFILE"])
    records = []
    for stage in stages:
        left = deadline - time.perf_counter()
        rec = {"bench": "scale_rehearsal", "stage": stage}
        if left < 20:
            rec.update(status="skipped: time limit", wall_s=None, peak_rss_mb=None, model_s=None, outside_s=None)
        else:
            status, wall, rss = run_stage(repo, stage, env, left)
            model = model_seconds(profile, stage)
            rec.update(status=status, wall_s=round(wall, 1), peak_rss_mb=rss, model_s=model,
                       outside_s=round(wall - (model or 0.0), 1))
        emit(rec)
        records.append(rec)
    return records


def summary(records: list[dict], args, wall: float, load: tuple[str, str]) -> dict:
    done = [r for r in records if r["status"] == "ok"]
    fine = next((r for r in done if r["stage"] == FINETUNE_TARGET["stage"]), None)
    peak = max((r["peak_rss_mb"] for r in records if r["peak_rss_mb"] is not None), default=None)
    return {"bench": "scale_rehearsal", "run": "summary", "small": args.small, "threads": args.threads,
            "total_wall_s": round(wall, 1), "stages_ok": len(done), "stages": len(records),
            "not_ok": {r["stage"]: r["status"] for r in records if r["status"] != "ok"},
            "max_peak_rss_mb": peak, "within_8gb": None if peak is None else peak <= RSS_LIMIT_MB,
            "finetune_cls_within_target": None if fine is None else
            fine["wall_s"] <= FINETUNE_TARGET["wall_s"] and fine["peak_rss_mb"] <= FINETUNE_TARGET["peak_rss_mb"],
            "max_steps": MAX_STEPS, "caps": CAPS, "loadavg_start": load[0], "loadavg_end": load[1],
            "cpu": "shared 2-core CPU" if os.cpu_count() == 2 else f"{os.cpu_count()} CPUs"}


def markdown(records: list[dict]) -> str:
    def cell(v):
        return "-" if v is None else f"{v:,.1f}" if isinstance(v, float) else str(v)

    rows = ["| stage | status | wall s | peak RSS MB | model fwd/bwd s | outside s |", "|---|---|---|---|---|---|"]
    rows += [f"| {r['stage']} | {r['status']} | {cell(r['wall_s'])} | {cell(r['peak_rss_mb'])} | "
             f"{cell(r['model_s'])} | {cell(r['outside_s'])} |" for r in records]
    return "\n".join(rows)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true", help="tiny shapes and --scale 0.002 data: a smoke test")
    p.add_argument("--scale", type=float, help="data scale (default 1.0; 0.002 with --small)")
    p.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of every stage (default 1)")
    p.add_argument("--time-limit", type=float, default=2100.0, help="seconds for the whole run (default 35 min)")
    p.add_argument("--stages", nargs="+", help="a subset of the stage list, in DAG order")
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "scale-rehearsal-data",
                   help="where the generated data sets are kept between runs")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table after the JSON lines")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy (its path goes to stderr)")
    return p.parse_args(argv)


def setup_repo(repo: Path, raw: Path, small: bool, stages: list[str]) -> None:
    clean_copy(repo)
    params = rehearsal_params(yaml.safe_load((repo / "params.yaml").read_text()), raw, small)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (("git", "init", "-q"), ("git", "add", "-A"), ("git", "commit", "-qm", "rehearsal")):
        run(repo, *cmd)
    known = set(run(repo, "dvc", "stage", "list", "--name-only").split())
    missing = [s for s in stages if s not in known]
    if missing:
        raise SystemExit(f"scale_rehearsal: stages not in dvc.yaml: {', '.join(missing)}")


def main(argv=None) -> int:
    args = parse(argv)
    start, load0 = time.perf_counter(), loadavg()
    stages = args.stages or stage_list()
    raw = make_data(args.data, args.scale or (0.002 if args.small else 1.0))
    tmp = Path(tempfile.mkdtemp(prefix="scale-rehearsal-"))
    repo = tmp / "repo"
    try:
        setup_repo(repo, raw, args.small, stages)
        env = {**environment(repo), "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
               "PIPELINE_PROFILE": str(tmp / "profile.jsonl")}
        records = rehearse(repo, stages, env, start + args.time_limit)
        emit(summary(records, args, time.perf_counter() - start, (load0, loadavg())))
        if args.markdown:
            print(markdown(records))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
