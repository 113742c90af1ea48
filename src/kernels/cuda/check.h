// Every CUDA runtime and cuBLASLt call is checked; a failure names the call site and the
// library's own message (llm.c's cudaCheck).
#pragma once
#include "core/error.h"
#include "kernels/cuda/cuda_runtime_or_emulation.h"

#define CUDA_CHECK(call)                                                                       \
  do {                                                                                         \
    const cudaError_t err_ = (call);                                                           \
    if (err_ != cudaSuccess)                                                                   \
      ::lathe::fail("CUDA error at ", __FILE__, ":", __LINE__, ": ", cudaGetErrorString(err_), \
                    " (", #call, ")");                                                         \
  } while (0)

// After a kernel launch: a bad configuration (too many threads, too much shared memory)
// is reported here, not at the next unrelated call.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// Needs <cublasLt.h> where it is used.
#define CUBLAS_CHECK(call)                                               \
  do {                                                                   \
    const cublasStatus_t st_ = (call);                                   \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                    \
      ::lathe::fail("cuBLASLt error at ", __FILE__, ":", __LINE__, ": ", \
                    cublasLtGetStatusString(st_), " (", #call, ")");     \
  } while (0)
