#!/usr/bin/env bash
# The GPU checks of ALL-PET in one prepared script, for a lent CUDA machine with no network.
#
# Usage (repository root):  bash benchmarks/gpu/run_device_checks.sh [STAGE ...]
# Stages (default: all, in this order): env tests projectors pet augmentation ldm suite host profile demo
#
# A lent machine gives 15 minutes in all (its start included) and at most 10 per command. Issue 4's open item
# (the synchronised forward at 3x ASTRA) fits one call: `host projectors tests` (about 4 min with the start).
# When `tests` is asked for, the CPU references it needs are compiled in the background from the start (stage
# warm, CPU only), so that their minutes overlap the GPU benchmarks instead of adding to them.
#
# Every stage runs in its own process under `timeout` (seconds below), so a failing or slow stage
# never stops the next; the log ($OUT/checks.log) and result files go to $OUT (default ./gpu-out). Packages the machine
# lacks travel as wheels in .gpuwheels/ (ignored by git; fetched with benchmarks/gpu/fetch_wheels.sh)
# and are unpacked to /tmp/site, which only the stages that need them put on PYTHONPATH.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/allpet-numba MPLBACKEND=Agg NUMBA_ENABLE_CUDASIM=0 \
    ALLPET_LIVE_FAILURES=1  # conftest.py prints each failure at once: a stage limit may cut pytest's summary
SITE=/tmp/site
STAGES=${*:-env tests projectors pet augmentation ldm suite host profile demo}

if [ -d .gpuwheels ] && [ ! -d "$SITE" ]; then
    mkdir -p "$SITE"
    for wheel in .gpuwheels/*.whl; do python3 -m zipfile -e "$wheel" "$SITE"; done
    rm -f "$SITE/nvidia/__init__.py"  # keep nvidia a namespace package, so the machine's CUDA 13 wheels still load
    if [ -f .gpuwheels/libcufft.so.11 ]; then  # see cufft_stub.c: ASTRA's FP/BP never call cuFFT
        mkdir -p "$SITE/nvidia/cufft/lib" && cp .gpuwheels/libcufft.so.11 "$SITE/nvidia/cufft/lib/"
    fi
fi
WITH_SITE="$PWD:$SITE"

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, append its output to $OUT/checks.log
    local name=$1 seconds=$2 start=$SECONDS log=/tmp/allpet-stage-$1.log
    shift 2
    echo "=== $name (limit ${seconds}s)"
    timeout "$seconds" "$@" >"$log" 2>&1
    local status=$?
    { echo "=== $name: exit $status after $((SECONDS - start))s"; cat "$log"; } >>"$OUT/checks.log"
    echo "=== $name: exit $status after $((SECONDS - start))s"
    tail -n 25 "$log"
}

warm() {  # the CPU references of the GPU tests, one kind per process into the shared cache (minutes each)
    PYTHONPATH=$WITH_SITE stage warm 240 bash -c 'for kind in parallel-beam lor listmode-tof sinogram sinogram-tof; do
        python3 -m benchmarks.gpu.warm_cpu_kernels $kind & done; wait'
}
WARM_PID=
case " $STAGES " in *" tests "*) warm & WARM_PID=$! ;; esac

for name in $STAGES; do
    case $name in
    env)
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
        PYTHONPATH=$WITH_SITE stage env 60 python3 benchmarks/gpu/env_check.py
        ;;
    tests)  # the CUDA paths: kernels, dispatch, every projector on the device, GPU-marked tests
        wait $WARM_PID
        PYTHONPATH=$WITH_SITE stage tests 220 python3 -m pytest -v -p no:cacheprovider -p no:benchmark -n 8 \
            -rA --tb=short tests/pet_projection/test_gpu_projectors.py tests/pet_projection/test_gpu_recon.py \
            tests/pet_projection/test_cuda.py tests/pet_projection/test_cuda_dispatch.py \
            tests/pet_projection/test_masks.py::test_cell_basis_on_the_gpu_equals_the_cpu
        ;;
    projectors)
        PYTHONPATH=$WITH_SITE stage projectors 150 python3 -m benchmarks.bench_projectors_gpu --repeat 30 \
            --out "$OUT/projectors_gpu.json"
        ;;
    pet)  # the clinical PET sinogram (non-TOF, TOF) and stored-endpoint LOR projectors, one OSEM subset of 1/4
        PYTHONPATH=$WITH_SITE stage pet 140 python3 -m benchmarks.bench_pet --device cuda --subsets 4 --repeat 5 \
            --out "$OUT/pet_gpu.json"
        ;;
    augmentation)
        PYTHONPATH=$WITH_SITE stage augmentation 60 python3 -m benchmarks.bench_augmentation_gpu --repeat 5 \
            --out "$OUT/augmentation_gpu.json"
        ;;
    ldm)
        PYTHONPATH=$WITH_SITE stage ldm 150 python3 -m benchmarks.bench_ldm_memory --device cuda --quick \
            --out "$OUT/ldm_memory_gpu.json"
        ;;
    suite)  # everything else the machine can run (viewer and browser tests skip: no flask/playwright there)
        PYTHONPATH=$WITH_SITE stage suite 240 python3 -m pytest -q -p no:cacheprovider -p no:benchmark -n 14
        ;;
    host)  # where the ~0.5 ms of host time per synchronised call goes, and two cheaper launch paths (issue 4's 3x)
        PYTHONPATH=$WITH_SITE stage host 120 python3 -m benchmarks.gpu.profile_host
        ;;
    profile)  # Nsight Compute on the batch-256 parallel-beam kernels: kernel-only durations and what limits them
        PYTHONPATH=$WITH_SITE stage profile 150 ncu --clock-control none --kernel-name "regex:^(forward|back)" \
            --section SpeedOfLight --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
            --section MemoryWorkloadAnalysis --section WarpStateStats python3 -m benchmarks.gpu.profile_parallel_beam 1 4 8
        ;;
    demo)  # the main job as a new user runs it (full size, the device chosen automatically)
        PYTHONPATH=$WITH_SITE stage demo 240 python3 -m tasks.cli demo --out /tmp/allpet-demo --no-progress \
            && cp /tmp/allpet-demo/*.csv /tmp/allpet-demo/*.md "$OUT/"
        ;;
    *)
        echo "unknown stage $name" && exit 2
        ;;
    esac
done
