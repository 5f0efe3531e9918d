#!/usr/bin/env bash
# The GPU check in one run (docs/benchmarks.md): the gpu-marked tests, the fine-tune throughput and
# inference speed-up benches at full size, and a short `dvc repro` of the embedded default with
# `precision: auto`, whose metrics bench/compare_metrics.py compares with a CPU run of the same targets.
#
#   OUT=/tmp/gpu bash bench/gpu_check.sh        # on a CUDA machine, from the repository root
#   OUT=/tmp/cpu NO_BENCH=1 REPRO_TIMEOUT=3000 bash bench/gpu_check.sh   # the CPU reference metrics
#   (SMALL=1 runs the benches' tiny CPU modes instead of skipping them)
#
# Writes seven files under $OUT (a lent machine returns at most eight): env.txt (versions, nvidia-smi),
# stderr.txt (every step's log), finetune.jsonl, inference.jsonl, pytest_gpu.txt, repro.txt and
# repro.tar.gz (the copy's params.yaml, dvc.lock and metrics/). On a machine without DVC and without a
# registry, the wheels in .whl/ (the packages it lacks; docs/benchmarks.md, "GPU numbers") are installed first.
set -u -o pipefail
OUT=${OUT:-$(mktemp -d)}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# A machine without a network: no library may try the hub, telemetry or an update check (a blocked
# connection can hang until its timeout instead of failing at once).
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1
SMALL_ARGS=${SMALL:+--small}
REPRO_TIMEOUT=${REPRO_TIMEOUT:-200}
START=$(date +%s)
log() { echo "[$(date +%T), $(( $(date +%s) - START )) s] $*" | tee -a "$OUT/stderr.txt"; }

if [ -d .whl ] && ! python3 -c "import dvc" 2>/dev/null; then
  log "installing $(ls .whl/*.whl | wc -l) carried wheels"
  python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check .whl/*.whl \
    >>"$OUT/stderr.txt" 2>&1 || { tail -5 "$OUT/stderr.txt"; exit 1; }
fi
# `python` (the stages' commands) must be this python3; a symlink to a venv's python would leave the venv
mkdir -p /tmp/bin && printf '#!/bin/sh\nexec "%s" "$@"\n' "$(command -v python3)" >/tmp/bin/python \
  && chmod +x /tmp/bin/python && export PATH=/tmp/bin:$PATH
python - >"$OUT/env.txt" <<'EOF'
import json, platform, torch, transformers
gpu = torch.cuda.is_available()
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                  "transformers": transformers.__version__, "gpu": torch.cuda.get_device_name(0) if gpu else None,
                  "capability": list(torch.cuda.get_device_capability(0)) if gpu else None}))
EOF
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,memory.used,temperature.gpu \
  --format=csv >>"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. The benches, alone on the GPU (BERT-base shape, seq 128, large batch); NO_BENCH=1 skips them.
if [ -z "${NO_BENCH:-}" ]; then
log "finetune_throughput: pipeline bf16, Trainer default and bf16 (batch 256)"
timeout 120 python bench/finetune_throughput.py $SMALL_ARGS --batch 256 --steps 30 --warmup 10 --trainer-bf16 \
  2>>"$OUT/stderr.txt" | tee "$OUT/finetune.jsonl"
log "finetune_throughput: pipeline bf16 + compile"
timeout 150 python bench/finetune_throughput.py $SMALL_ARGS --batch 256 --steps 30 --warmup 10 --impl pipeline \
  --train-arg compile=true 2>>"$OUT/stderr.txt" | tee -a "$OUT/finetune.jsonl"
log "inference_speedups: batches 1 and 128"
timeout 100 python bench/inference_speedups.py $SMALL_ARGS --batches 1 128 2>>"$OUT/stderr.txt" | tee "$OUT/inference.jsonl"
fi

# 2. A short dvc repro in a clean copy (background) while the gpu-marked tests run.
log "dvc repro (cls: finetune, distill-heads, quantize; qa: finetune) with precision: auto"
COPY=/tmp/gpu_repro && rm -rf $COPY && python -c "import sys; sys.path.insert(0, 'tests')
from clean_copy import clean_copy; from pathlib import Path; clean_copy(Path('$COPY'))"
python - "$COPY/params.yaml" <<'EOF'
import sys, yaml
path = sys.argv[1]
params = yaml.safe_load(open(path))
def walk(node):
    if isinstance(node, dict):
        if "epochs" in node and "lr" in node:
            node["precision"] = "auto"  # every training section: bf16 autocast on the GPU
        for value in node.values():
            walk(value)
walk(params)
yaml.safe_dump(params, open(path, "w"), sort_keys=False)
EOF
TARGETS="evaluate@cls-finetune evaluate@cls-distill-heads evaluate-quantize@cls-distill-heads evaluate@qa-finetune"
(cd $COPY && { { git init -q && git add -A && git -c user.name=gpu-check -c user.email=gpu@example.invalid \
  commit -qm "gpu check"; } 2>/dev/null || python -m dvc config core.no_scm true; } \
  && timeout $REPRO_TIMEOUT python -m dvc repro $TARGETS >"$OUT/repro.txt" 2>&1; echo "dvc repro exit $?" >>"$OUT/repro.txt") &
REPRO=$!
log "pytest -m gpu"
# only the files with gpu-marked tests: the others may import test-only packages the machine lacks
timeout 180 python -m pytest -m gpu -q -p no:cacheprovider -rs $(grep -l "pytest.mark.gpu" tests/test_*.py) 2>&1 | tee "$OUT/pytest_gpu.txt" | tail -15
wait $REPRO
tail -3 "$OUT/repro.txt"
(cd $COPY && tar czf "$OUT/repro.tar.gz" params.yaml dvc.lock metrics 2>/dev/null)
python bench/compare_metrics.py "$COPY/metrics" 2>&1 | tail -12
log "done"
