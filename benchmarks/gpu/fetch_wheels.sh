#!/usr/bin/env bash
# Fill .gpuwheels/ with what the lent GPU machine (Python 3.12, CUDA 13, no network) lacks for the checks of
# run_device_checks.sh: ASTRA (PyPI wheel, CUDA 12 build) with its CUDA 12 runtime, a stub for its cuFFT
# (cufft_stub.c), diffusers (schedulers) with importlib_metadata, nibabel, and NumPy 2.4: the machine's
# numba-cuda 0.30.4 fails to import under its NumPy 2.5 (np.row_stack is gone). Run here, where pip works.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p .gpuwheels
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    --platform any -d .gpuwheels astra-toolbox==2.5.0 nvidia-cuda-runtime-cu12==12.9.79 diffusers==0.42.1 \
    importlib_metadata==10.2.0 lazy-importer==0.1.0 nibabel==5.4.2 numpy==2.4.6
gcc -shared -fPIC -Wl,--version-script=benchmarks/gpu/cufft_stub.map -Wl,-soname,libcufft.so.11 \
    -o .gpuwheels/libcufft.so.11 benchmarks/gpu/cufft_stub.c
ls -la .gpuwheels
