#!/usr/bin/env bash
# The GPU check: pack-engine throughput and a small real-data study through Ray; JSON out.
#
#   bash benchmarks/gpu_check.sh            # on a machine with one CUDA GPU
#   bash benchmarks/gpu_check.sh --dry-run  # prints what it would run; needs no GPU
#
# Meant to finish in under 8 minutes on one H100/H200 (every step has a time limit):
# - `minarch bench --device cuda --json` for mlp-grid, cnn, resnet20 and vit, one process
#   each: the fused pack engine against plain PyTorch, timed alternately in that process;
# - the GPU's peak memory during each step (nvidia-smi, sampled every 100 ms);
# - ResNet-20 on CIFAR-10 JPEG (4 widths x 2 lr x 2 seeds = 16 runs in 4 packs, 3 epochs)
#   through `--executor ray --gpus-per-pack 0.25`: four packs share the GPU.
# Environment: PYTHON (default python3, with minarch's dependencies and ray), and
# MINARCH_DATA_DIR (default: shared/datasets in or beside this checkout), which must
# hold cifar10-jpeg/cifar10-jpeg.tar.gz.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ -z "${MINARCH_DATA_DIR:-}" ]; then
  for candidate in "$ROOT/shared/datasets" "$ROOT/../shared/datasets"; do
    if [ -d "$candidate" ]; then MINARCH_DATA_DIR="$(cd "$candidate" && pwd)"; break; fi
  done
fi
export MINARCH_DATA_DIR="${MINARCH_DATA_DIR:-$ROOT/shared/datasets}"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
DRY_RUN=$([ "${1:-}" = "--dry-run" ] && echo 1 || echo 0)
if [ -n "${GPU_CHECK_DIR:-}" ]; then WORK="$GPU_CHECK_DIR"
elif [ "$DRY_RUN" = 1 ]; then WORK='$TMPDIR/gpu-check'
else WORK="$(mktemp -d)"; fi
WORKLOADS=(mlp-grid cnn resnet20 vit)
BENCH_LIMIT=60    # seconds per workload
STUDY_LIMIT=200   # seconds for the Ray study

STUDY_YAML='name: gpu-check
datasets: [cifar10-jpeg]
models:
  - {family: resnet_cifar, depth: 20, width_multiplier: [0.5, 0.75, 1.0, 1.5]}
training: {optimizer: sgd, lr: [0.05, 0.1], weight_decay: 5.0e-4, batch_size: 128,
           epochs: 3, schedule: cosine, augmentation: crop-flip}
seeds: 2'

names=()
commands=()
limits=()
for workload in "${WORKLOADS[@]}"; do
  names+=("bench-$workload")
  commands+=("$PYTHON -m minarch bench --device cuda --json --workload $workload")
  limits+=("$BENCH_LIMIT")
done
names+=("ray-study")
commands+=("$PYTHON -m minarch run $WORK/gpu-check.yaml --db sqlite:///$WORK/runs.db \
--device cuda --executor ray --gpus-per-pack 0.25 --no-download --out $WORK/reports")
limits+=("$STUDY_LIMIT")

if [ "$DRY_RUN" = 1 ]; then
  "$PYTHON" - "$WORK" "$MINARCH_DATA_DIR" "$STUDY_YAML" "${commands[@]}" <<'EOF'
import json, sys
work, data, study, *commands = sys.argv[1:]
print(json.dumps({
    "dry_run": True,
    "data_dir": data,
    "study": study,
    "commands": commands,
    "output": {
        "gpu": "name of the GPU",
        "steps": {"bench-<workload>": {"seconds": 0, "exit_code": 0, "peak_memory_mib": 0,
                                       "result": "minarch bench --json rows"},
                  "ray-study": {"seconds": 0, "exit_code": 0, "peak_memory_mib": 0,
                                "result": "states, runs, mean final val acc, engines"}},
        "total_seconds": 0,
    },
}, indent=1))
EOF
  exit 0
fi

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi, no GPU here" >&2; exit 2; }
printf '%s\n' "$STUDY_YAML" > "$WORK/gpu-check.yaml"
started=$(date +%s)
for i in "${!names[@]}"; do
  name="${names[$i]}"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 \
    > "$WORK/$name.memory" 2>/dev/null &
  sampler=$!
  step_start=$(date +%s)
  set +e
  timeout "${limits[$i]}" bash -c "${commands[$i]}" > "$WORK/$name.out" 2> "$WORK/$name.err"
  echo $? > "$WORK/$name.code"
  set -e
  echo $(( $(date +%s) - step_start )) > "$WORK/$name.seconds"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  echo "gpu_check: $name exit $(cat "$WORK/$name.code") in $(cat "$WORK/$name.seconds") s" >&2
done
set +e
timeout 60 "$PYTHON" -m minarch runs --db "sqlite:///$WORK/runs.db" --study gpu-check \
  --format json > "$WORK/ray-study.runs" 2>> "$WORK/ray-study.err"
set -e
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"

"$PYTHON" - "$WORK" "$gpu" "$(( $(date +%s) - started ))" "${names[@]}" <<'EOF'
import json, statistics, sys
from pathlib import Path

work, gpu, total, *names = sys.argv[1:]
work = Path(work)


def read(name, suffix):
    path = work / f"{name}.{suffix}"
    return path.read_text() if path.exists() else ""


def study_result():
    try:
        runs = json.loads(read("ray-study", "runs"))
    except json.JSONDecodeError:
        return {"error": read("ray-study", "err")[-2000:]}
    done = [r for r in runs if r["state"] == "done"]
    return {
        "runs": len(runs),
        "states": {s: sum(r["state"] == s for r in runs) for s in {r["state"] for r in runs}},
        "mean_final_val_acc": statistics.mean(r["final_val_acc"] for r in done) if done else None,
        "engines": sorted({r["engine"] for r in done}),
        "train_seconds_max": max((r["train_seconds"] for r in done), default=None),
    }


steps = {}
for name in names:
    memory = [int(v) for v in read(name, "memory").split() if v.isdigit()]
    step = {
        "seconds": int(read(name, "seconds") or 0),
        "exit_code": int(read(name, "code") or -1),
        "peak_memory_mib": max(memory, default=None),
    }
    if name == "ray-study":
        step["result"] = study_result()
    else:
        try:
            step["result"] = json.loads(read(name, "out"))
        except json.JSONDecodeError:
            step["result"] = None
    if step["exit_code"] != 0:
        step["stderr_tail"] = read(name, "err")[-2000:]
    steps[name] = step
print(json.dumps({"gpu": gpu, "steps": steps, "total_seconds": int(total)}, indent=1))
EOF
