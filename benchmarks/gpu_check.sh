#!/usr/bin/env bash
# The GPU check: the four risks of the GPU path, measured on one GPU; one JSON summary out.
#
#   bash benchmarks/gpu_check.sh            # on a machine with one CUDA GPU
#   bash benchmarks/gpu_check.sh --dry-run  # prints what it would run; needs no GPU
#
# Exits 0 when every step ran and passed its check, 1 when one failed (the JSON
# lists why), 2 when there is no GPU. Meant to finish in about 5 minutes on one
# H100/H200; every step has a time limit. Steps:
# - grid: ResNet-20 on CIFAR-10 JPEG, 9 lr x 9 weight decays x 3 seeds = 243 runs in
#   one pack, 1 epoch, `--engine batched`: the batched engine on a large fused pack,
#   its memory plan (per-member inputs) and its evaluation batches. Passes when
#   every run is done or diverged, none failed.
# - ray-share: 16 ResNet-20 runs in 4 packs through `--executor ray --gpus-per-pack
#   0.25`: four packs share the GPU; peak memory per process (nvidia-smi, every
#   200 ms). Passes when every run is done.
# - eval-throughput: validation images per second of a 243-member batched
#   ResNet-20 pack over 10,000 images (train_pack with one training step).
# - fp32 / bf16: the same 8 runs with `--set training.precision=bf16` and without;
#   passes when both finish and bf16's mean final accuracy is within 0.05 of fp32's.
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

GRID_YAML='name: gpu-grid
datasets: [{name: cifar10-jpeg, train_fraction: 0.04, validation: 0.02}]
models: [{family: resnet_cifar, depth: 20}]
training: {optimizer: sgd, batch_size: 128, epochs: 1, schedule: cosine,
           lr: [0.003, 0.006, 0.01, 0.02, 0.03, 0.06, 0.1, 0.2, 0.3],
           weight_decay: [1.0e-5, 3.0e-5, 1.0e-4, 2.0e-4, 5.0e-4, 1.0e-3, 2.0e-3, 5.0e-3, 1.0e-2]}
seeds: 3'
RAY_YAML='name: gpu-ray
datasets: [{name: cifar10-jpeg, train_fraction: 0.1}]
models:
  - {family: resnet_cifar, depth: 20, width_multiplier: [0.5, 0.75, 1.0, 1.5]}
training: {optimizer: sgd, lr: [0.05, 0.1], weight_decay: 5.0e-4, batch_size: 128,
           epochs: 2, schedule: cosine, augmentation: crop-flip}
seeds: 2'
PRECISION_YAML='name: gpu-precision
datasets: [{name: cifar10-jpeg, train_fraction: 0.2}]
models: [{family: resnet_cifar, depth: 20}]
training: {optimizer: sgd, lr: [0.05, 0.1], weight_decay: 5.0e-4, batch_size: 128,
           epochs: 3, schedule: cosine, augmentation: crop-flip}
seeds: 4'
EVAL_PY='import json, sys, time, torch
from minarch.data import dataset_info
from minarch.bench.measure import random_data
from minarch.models import build_model
from minarch.train import Hooks, Member, Recipe, train_pack
info = dataset_info("cifar10-jpeg")
data = random_data(info, 128)  # one training step
g = torch.Generator().manual_seed(0)
val = torch.randint(0, 256, (10_000, *info.input_shape), generator=g, dtype=torch.uint8)
data = type(data)(info, data.train_x, data.train_y, val, torch.randint(0, 10, (10_000,)),
                  data.mean, data.std).to("cuda")
members = [Member(f"m{i}", 0.01, 1e-4, i % 3) for i in range(243)]
recipe = Recipe(optimizer="sgd", batch_size=128, epochs=1, schedule="constant")
build = lambda gen: build_model("resnet_cifar", {"depth": 20}, info.input_shape, 10, generator=gen)
for timed in (False, True):  # the first call compiles kernels and fills caches
    torch.cuda.synchronize(); start = time.perf_counter()
    results = train_pack(make_model=build, members=members, recipe=recipe, data=data,
                         device=torch.device("cuda"), hooks=Hooks(), engine="batched")
    torch.cuda.synchronize(); seconds = time.perf_counter() - start
print(json.dumps({"members": len(members), "validation_images": 10_000, "seconds": seconds,
                  "member_images_per_s": len(members) * 10_000 / seconds,
                  "engine": results[0].engine,
                  "max_memory_allocated_mib": torch.cuda.max_memory_allocated() // 2**20}))'

names=(grid ray-share eval-throughput fp32 bf16)
limits=(180 180 90 90 90)
run_cmd="$PYTHON -m minarch run"
common="--device cuda --no-download"
commands=(
  "$run_cmd $WORK/grid.yaml --db sqlite:///$WORK/grid.db $common --engine batched --workers 1 --out $WORK/reports"
  "$run_cmd $WORK/ray.yaml --db sqlite:///$WORK/ray.db $common --executor ray --gpus-per-pack 0.25 --out $WORK/reports"
  "$PYTHON $WORK/eval.py"
  "$run_cmd $WORK/precision.yaml --db sqlite:///$WORK/fp32.db $common --workers 1 --out $WORK/reports"
  "$run_cmd $WORK/precision.yaml --db sqlite:///$WORK/bf16.db $common --workers 1 --set training.precision=bf16 --out $WORK/reports"
)

if [ "$DRY_RUN" = 1 ]; then
  "$PYTHON" - "$WORK" "$MINARCH_DATA_DIR" "$GRID_YAML" "$RAY_YAML" "$PRECISION_YAML" \
    "${commands[@]}" <<'EOF'
import json, sys
work, data, grid, ray, precision, *commands = sys.argv[1:]
print(json.dumps({
    "dry_run": True,
    "data_dir": data,
    "studies": {"grid.yaml": grid, "ray.yaml": ray, "precision.yaml": precision},
    "commands": commands,
    "output": {
        "gpu": "name of the GPU",
        "ok": "true when every step passed",
        "failures": ["<step>: why"],
        "steps": {"<step>": {"seconds": 0, "exit_code": 0, "peak_memory_mib": 0,
                             "peak_memory_mib_per_process": {"<pid>": 0},
                             "result": "runs and states, or the step's own JSON"}},
        "total_seconds": 0,
    },
}, indent=1))
EOF
  exit 0
fi

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi, no GPU here" >&2; exit 2; }
printf '%s\n' "$GRID_YAML" > "$WORK/grid.yaml"
printf '%s\n' "$RAY_YAML" > "$WORK/ray.yaml"
printf '%s\n' "$PRECISION_YAML" > "$WORK/precision.yaml"
printf '%s\n' "$EVAL_PY" > "$WORK/eval.py"
started=$(date +%s)
for i in "${!names[@]}"; do
  name="${names[$i]}"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 \
    > "$WORK/$name.memory" 2>/dev/null &
  total_sampler=$!
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 200 \
    > "$WORK/$name.processes" 2>/dev/null &
  process_sampler=$!
  step_start=$(date +%s)
  set +e
  timeout "${limits[$i]}" bash -c "${commands[$i]}" > "$WORK/$name.out" 2> "$WORK/$name.err"
  echo $? > "$WORK/$name.code"
  set -e
  echo $(( $(date +%s) - step_start )) > "$WORK/$name.seconds"
  kill "$total_sampler" "$process_sampler" 2>/dev/null || true
  wait "$total_sampler" "$process_sampler" 2>/dev/null || true
  echo "gpu_check: $name exit $(cat "$WORK/$name.code") in $(cat "$WORK/$name.seconds") s" >&2
done
set +e
for db in grid ray fp32 bf16; do
  timeout 60 "$PYTHON" -m minarch runs --db "sqlite:///$WORK/$db.db" --format json \
    > "$WORK/$db.runs" 2>> "$WORK/$db.runs-err"
done
set -e
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"

set +e
"$PYTHON" - "$WORK" "$gpu" "$(( $(date +%s) - started ))" "${names[@]}" <<'EOF'
import json, statistics, sys
from collections import defaultdict
from pathlib import Path

work, gpu, total, *names = sys.argv[1:]
work = Path(work)
STUDY_DB = {"grid": "grid", "ray-share": "ray", "fp32": "fp32", "bf16": "bf16"}


def read(name, suffix):
    path = work / f"{name}.{suffix}"
    return path.read_text() if path.exists() else ""


def runs_of(db):
    try:
        return json.loads(read(db, "runs"))
    except json.JSONDecodeError:
        return None


def summary(runs):
    done = [r for r in runs if r["state"] == "done"]
    return {
        "runs": len(runs),
        "states": {s: sum(r["state"] == s for r in runs) for s in {r["state"] for r in runs}},
        "mean_final_val_acc": statistics.mean(r["final_val_acc"] for r in done) if done else None,
        "engines": sorted({r["engine"] for r in done}),
        "train_seconds_max": max((r["train_seconds"] for r in done), default=None),
    }


def per_process(name):
    peaks = defaultdict(int)
    for line in read(name, "processes").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            peaks[parts[0]] = max(peaks[parts[0]], int(parts[1]))
    return dict(peaks)


steps, failures = {}, []
for name in names:
    memory = [int(v) for v in read(name, "memory").split() if v.isdigit()]
    step = {
        "seconds": int(read(name, "seconds") or 0),
        "exit_code": int(read(name, "code") or -1),
        "peak_memory_mib": max(memory, default=None),
        "peak_memory_mib_per_process": per_process(name),
    }
    if step["exit_code"] != 0:
        step["stderr_tail"] = read(name, "err")[-2000:]
        failures.append(f"{name}: exit code {step['exit_code']}")
    if name in STUDY_DB:
        runs = runs_of(STUDY_DB[name])
        step["result"] = summary(runs) if runs is not None else None
        if runs is None:
            failures.append(f"{name}: no runs could be read")
        elif name == "grid" and any(r["state"] not in ("done", "diverged") for r in runs):
            failures.append(f"grid: runs not finished: {step['result']['states']}")
        elif name != "grid" and any(r["state"] != "done" for r in runs):
            failures.append(f"{name}: runs not done: {step['result']['states']}")
    else:
        try:
            step["result"] = json.loads(read(name, "out").strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            step["result"] = None
            failures.append(f"{name}: printed no result")
    steps[name] = step
accuracies = [(steps.get(p, {}).get("result") or {}).get("mean_final_val_acc") for p in ("fp32", "bf16")]
if None not in accuracies:
    steps["bf16"]["accuracy_minus_fp32"] = accuracies[1] - accuracies[0]
    steps["bf16"]["seconds_over_fp32"] = steps["bf16"]["seconds"] / max(1, steps["fp32"]["seconds"])
    if accuracies[1] < accuracies[0] - 0.05:
        failures.append(f"bf16: mean accuracy {accuracies[1]:.3f} vs fp32 {accuracies[0]:.3f}")
print(json.dumps({"gpu": gpu, "ok": not failures, "failures": failures, "steps": steps,
                  "total_seconds": int(total)}, indent=1))
sys.exit(1 if failures else 0)
EOF
exit $?
