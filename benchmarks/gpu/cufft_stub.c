/* A stand-in for libcufft.so.11, used only to load ASTRA's PyPI wheel on the GPU benchmark machine.
 *
 * ASTRA links cuFFT for its filtered back projection; its forward (FP_CUDA, FP3D_CUDA) and back
 * (BP_CUDA, BP3D_CUDA) projectors never call it. The real CUDA 12 cuFFT wheel (~200 MB) is larger
 * than what can be carried to the machine, so the five symbols ASTRA imports are defined here and
 * fail loudly (CUFFT_NOT_SUPPORTED = 16, and a message) if anything does call them.
 *
 * Built by benchmarks/gpu/fetch_wheels.sh (gcc, version script cufft_stub.map, soname libcufft.so.11).
 */
#include <stdio.h>

static int unsupported(const char *name) {
    fprintf(stderr, "cufft_stub: %s called; this benchmark build of ASTRA has no cuFFT\n", name);
    return 16;
}

int cufftPlan1d(void *plan, int nx, int type, int batch) { return unsupported("cufftPlan1d"); }
int cufftExecR2C(int plan, void *in, void *out) { return unsupported("cufftExecR2C"); }
int cufftExecC2R(int plan, void *in, void *out) { return unsupported("cufftExecC2R"); }
int cufftSetStream(int plan, void *stream) { return unsupported("cufftSetStream"); }
int cufftDestroy(int plan) { return unsupported("cufftDestroy"); }
