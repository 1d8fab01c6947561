#!/usr/bin/env bash
# The GPU checks of the learned codecs in one go, for a session that is lent a GPU for a few minutes.
#
#   benchmarks/gpu_check.sh          on CUDA: the `gpu` tests, autoencoder_throughput.py for the `default`
#                                    preset at batch 32 and 128 in fp32 and bf16, entropy_coding_throughput.py
#                                    on one shipped checkpoint per entropy model at batch 32, range-coding in
#                                    all but two of the CPU cores (range_coding_processes), in two overlapped
#                                    sub-batches (overlap_sub_batches), and both, and
#                                    precision_quality.py (rate and PSNR of bf16 and fp16 against fp32)
#   benchmarks/gpu_check.sh cpu      a dry run of the same steps, small, on the CPU: checks the script and the
#                                    arguments it passes (the gpu tests skip there)
#
# TILES=FILE.npy (from benchmarks/benchmark_tiles.py) makes the entropy-coding and precision steps read their tiles
# from that file instead of benchmarks.yaml's GeoTIFFs. The lent GPU machine's image lacks rasterio, glymur,
# imagecodecs, constriction, pytorch-msssim and bjontegaard, and rasterio's wheel (39 MB) does not fit beside the
# repository (44 MB) in the 64 MiB that travels there. Prepare here, in the repository root:
#     .venv/bin/python benchmarks/benchmark_tiles.py benchmarks.yaml .gpu/tiles.npy
#     pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_17_x86_64 -d .gpu/wheels constriction==0.5.0 pytorch-msssim bjontegaard
# and run there (device tool, carry [".gpu"]):
#     pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl && export PYTHONPATH=/tmp/site
#     pip install -q --no-deps --no-build-isolation -e .     # the harness itself (harness_codecs is codecs/)
#     TILES=.gpu/tiles.npy OUT=$OUT bash benchmarks/gpu_check.sh
# The `gpu` tests then run from every test module that imports there (pytest continues past the others' collection
# errors); the one that needs a GeoTIFF and Dask (GPU workers) skips or errors without rasterio and dask.
# Outputs go to $OUT (default reports/gpu_check/): one text file per step, and steps.txt with each step's exit
# status and seconds. Every step has a time limit, so the whole script ends within 10 minutes on CUDA
# even if one step hangs; a failing step does not stop the others. Run from the repository root; PYTHON
# (default: .venv/bin/python if present, else python) runs the Python steps.
set -u
device=${1:-cuda}
out=${OUT:-reports/gpu_check}
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
mkdir -p "$out"

if [ "$device" = cuda ]; then
    presets=default batches=32,128 precisions="fp32 bf16" repeats=5 entropy_batch=32
    # one checkpoint per entropy model: each starts its own pool of workers, and the step must end in time
    entropy_checkpoints=(checkpoints/autoencoder-tiny-factorized-l60.pt checkpoints/autoencoder-tiny-hyperprior-l100.pt
                         checkpoints/autoencoder-gdn-dct-light-checkerboard.pt)
    range_processes=$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))
    quality_options=(--precisions bf16,fp16)
else
    presets=tiny batches=2 precisions=fp32 repeats=1 entropy_batch=2 range_processes=2
    entropy_checkpoints=(checkpoints/autoencoder-tiny-factorized-l60.pt)
    quality_options=(--precisions bf16 --qualities 0 --max-tiles 2)
fi

step() {  # step NAME LIMIT_S COMMAND...: run COMMAND into $out/NAME.txt, log its status and duration
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    local status=$?
    echo "$name: exit $status, $((SECONDS - start)) s" | tee -a "$out/steps.txt"
}

: >"$out/steps.txt"
step environment 30 bash -c "nvidia-smi; $python -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())'"
tile_options=(${TILES:+--tiles "$TILES"})
step gpu_tests 110 "$python" -m pytest -q -p no:cacheprovider -m gpu -rs --continue-on-collection-errors tests/
for precision in $precisions; do
    step "autoencoder_throughput_$precision" 90 "$python" benchmarks/autoencoder_throughput.py --device "$device" \
        --presets "$presets" --batch-sizes "$batches" --precision "$precision" --repeats "$repeats"
done
step entropy_coding_throughput 180 "$python" benchmarks/entropy_coding_throughput.py --device "$device" \
    --batch-size "$entropy_batch" --repeats 3 --range-coding-processes "$range_processes" --overlap-sub-batches 2 \
    "${tile_options[@]}" \
    "${entropy_checkpoints[@]}"
step precision_quality 100 "$python" benchmarks/precision_quality.py --device "$device" "${tile_options[@]}" \
    "${quality_options[@]}"
