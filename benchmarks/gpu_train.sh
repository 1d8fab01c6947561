#!/usr/bin/env bash
# Training the learned codec on a GPU machine lent for a few minutes (docs/learned-codec.md, "Training on a lent
# GPU machine"). That machine has PyTorch, numpy, scipy, pandas and PyYAML but not rasterio (whose wheel does not
# fit beside the repository in the 64 MiB that travel there), so the training data go as a training pack.
#
#   benchmarks/gpu_train.sh prepare   here, in the repository root: writes .gpu/training.pack from
#                                     data/training-ombria.yaml (checked against benchmarks.yaml), fetches the
#                                     wheels the machine lacks into .gpu/wheels, and checks that the working tree
#                                     and .gpu together fit in 64 MiB
#   benchmarks/gpu_train.sh           there (device tool, carry [".gpu"], timeout_s 590): installs the wheels and
#                                     the harness, trains with $OPTIONS (default examples/train_gdn_light_gpu.yaml,
#                                     whose --time-limit ends the run with a checkpoint) and writes the best
#                                     checkpoint and the log to $OUT (default reports/gpu_train/)
#
# .gpu/ is ignored by git: the pack holds OMBRIA pixels, for training only, never shipped. Score the checkpoint that
# comes back here, on the CPU, with the benchmark (docs/learned-codec.md, "Benchmarking a checkpoint you trained"),
# on the test chips and the held-out chains alike.
set -euo pipefail
out=${OUT:-reports/gpu_train}
options=${OPTIONS:-examples/train_gdn_light_gpu.yaml}
limit_bytes=$((64 * 1024 * 1024))

if [ "${1:-run}" = prepare ]; then
    python=${PYTHON:-.venv/bin/python}
    mkdir -p .gpu/wheels
    "$python" -m harness train autoencoder --data data/training-ombria.yaml --patch-size 256 \
        --write-pack .gpu/training.pack
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels \
        constriction==0.5.0 pytorch-msssim bjontegaard
    tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    carried=$(du -sb .gpu | cut -f1)
    awk -v t="$tree" -v c="$carried" 'BEGIN { printf "travels: working tree %.1f MiB + .gpu %.1f MiB of 64 MiB\n", t / 2^20, c / 2^20 }'
    if [ $((tree + carried)) -gt "$limit_bytes" ]; then
        echo "too much travels: shrink the pack (fewer windows in the --data file's sections)" >&2
        exit 1
    fi
    exit 0
fi

mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e .
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; } \
    | tee "$out/device.txt"
# The best checkpoint goes to $out; the resume state (optimizer too, too large to come back) stays on the machine.
python3 -m harness train autoencoder --options "$options" --output /tmp/gpu_train/model.pt 2>&1 \
    | tr '\r' '\n' | awk 'NR % 50 == 1 || /autoencoder:|rror/' | tee "$out/train.log"
cp /tmp/gpu_train/model.pt "$out/model.pt"
