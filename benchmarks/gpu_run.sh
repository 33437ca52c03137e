#!/usr/bin/env bash
# The one prepared GPU run: every GPU check of the project, in order, inside one lease.
#
#   .venv/bin/python benchmarks/gpu_prepare.py        # here, first: data, judge matrices, tuned settings -> .gpu/
#   bash benchmarks/gpu_run.sh OUT_FOLDER             # on the GPU machine, carrying .gpu
#
# The GPU machine reaches nothing outside it and has its own Python with torch, so this runs the
# repository from the source tree (PYTHONPATH) with that Python, the data and the judge's cached
# matrices from .gpu (benchmarks/gpu_prepare.py). Steps, each with its own time limit, each
# writing its result to OUT_FOLDER as soon as it has it:
#   1. training / evaluation throughput of resnet18 and the small vit (benchmarks/throughput.py)
#   2. the CUDA determinism test (tests/test_robustness.py -k cuda)
#   3. MeGU against retrain and every baseline on ResNet18 (benchmarks/megu_vs_retrain.py), at the
#      main profile's tuned class settings (.gpu/tuned_class_hp.json)
#   4. the recipe search for the ResNet18 original (benchmarks/original_recipe.py --arch resnet18),
#      epochs, augmentation and peak lr; not among the default steps (the first lease, 2026-12-04,
#      ran 1-3 and 5)
#   5. as much of the `full` profile as the time left allows (seed 0 first; records resumable),
#      packed into OUT_FOLDER/full_records.tgz
# GPU_RUN_STEPS picks the steps, in this order (default "throughput determinism megu_vs_all full";
# the others: recipe). The whole run stops itself after GPU_RUN_BUDGET seconds (default 530) so
# that a partial run still brings back what it finished. GPU_RUN_TINY=1 is a CPU rehearsal of the
# same steps at toy size.
set -u
OUT=${1:?usage: gpu_run.sh OUT_FOLDER}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=${PY:-python3}
BUDGET=${GPU_RUN_BUDGET:-530}
TINY=${GPU_RUN_TINY:-0}
STEPS=" ${GPU_RUN_STEPS:-throughput determinism megu_vs_all full} "
for s in $STEPS; do
  case $s in throughput | determinism | megu_vs_all | recipe | full) ;;
  *) echo "error: GPU_RUN_STEPS has no step '$s'; the steps: throughput determinism megu_vs_all recipe full" >&2
     exit 2 ;;
  esac
done
wants() { [[ $STEPS == *" $1 "* ]]; }
START=$(date +%s)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MEGU_PROGRESS=0
export MEGU_DATA_DIR=$PWD/.gpu/data MEGU_CACHE_DIR=$PWD/.gpu/cache HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
LOG=$OUT/gpu_run.log

left() { echo $((BUDGET - ($(date +%s) - START))); }
say() { echo "[gpu_run +$(($(date +%s) - START))s] $*" | tee -a "$LOG"; }

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND under min(LIMIT, time left), output to OUT/NAME.log
step() {
  local name=$1 limit=$2 rc
  shift 2
  local cap
  cap=$(left)
  ((limit > cap)) && limit=$cap
  if ((limit < 10)); then say "$name: skipped, ${cap}s left"; return 0; fi
  local cmd="$*"
  say "$name: start (limit ${limit}s): ${cmd:0:200}"
  timeout -k 5 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  say "$name: rc $rc$( ((rc == 124 || rc == 137)) && echo ' (stopped at its limit)')"
}

say "host $(hostname), budget ${BUDGET}s, tiny=$TINY"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
          'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
  nproc
} >>"$LOG" 2>&1

if [ "$TINY" = 1 ]; then
  DEV=cpu
  TP_ARGS=(--dataset synthetic32 --device cpu --images 512 --repeats 1)
  MVR_ARGS=(--methods finetune megu --forget Trouser --arch small_cnn --width 8 --preset fast --device cpu)
  RECIPE_ARGS=(--candidates 8:1 --device cpu)
  FULL_PROFILE=smoke
else
  DEV=cuda
  TP_ARGS=(--dataset synthetic32 --device cuda --batch-size 1024 --images 200000)
  MVR_ARGS=(--methods all --profile full --device cuda)  # full.yaml's original (its recipe)
  # epochs[:augment[:peak lr]], cheapest first: the gpu preset (15 epochs, crops and flips, lr 0.4)
  # underfit on the first lease (training accuracy 92 %, test 89.08 %, Shirt 65.1 %)
  RECIPE_ARGS=(--arch resnet18 --preset gpu --device cuda
    --candidates 15:0 15:0:0.1 15:1:0.1 30:0 30:0:0.1 30:1:0.1 30 60:1:0.1)
  FULL_PROFILE=full
fi

# 1. throughput (README's table: resnet18 training and evaluation, small vit training)
if wants throughput; then
  step throughput_resnet18 90 $PY benchmarks/throughput.py --arch resnet18 "${TP_ARGS[@]}"
  step throughput_vit 90 $PY benchmarks/throughput.py --arch vit "${TP_ARGS[@]}"
fi

# 2. CUDA determinism (two runs of one profile and seed, every metric within 1.0 point)
if [ "$DEV" = cuda ] && wants determinism; then
  step cuda_determinism 120 $PY -m pytest -q -s -p no:cacheprovider tests/test_robustness.py -k cuda
fi

# 3. MeGU against retrain and every baseline, one run, one device
if wants megu_vs_all; then
  HP=$($PY -c "import json; print(json.dumps(json.load(open('.gpu/tuned_class_hp.json'))))" 2>/dev/null || echo '{}')
  step megu_vs_all 520 $PY benchmarks/megu_vs_retrain.py "${MVR_ARGS[@]}" --hp "$HP" --out "$OUT/gpu_megu_vs_all.json"
fi

# 4. a recipe for the ResNet18 original that clears the CPU original's bar (91 % test, 70 % Shirt)
if wants recipe; then
  step recipe 480 $PY benchmarks/original_recipe.py "${RECIPE_ARGS[@]}" --out "$OUT/original_recipe.json"
fi

# 5. the full profile, seed 0 first, for the time left (less the packing)
if wants full; then
  FULL_LEFT=$(($(left) - 20))
  step full_profile "$FULL_LEFT" $PY -m megu_lib run "$FULL_PROFILE" --device "$DEV"
  tar czf "$OUT/full_records.tgz" "results/$FULL_PROFILE" 2>>"$LOG"
  say "records: $(ls results/"$FULL_PROFILE"/records 2>/dev/null | wc -l) files packed"
fi
say "done"
