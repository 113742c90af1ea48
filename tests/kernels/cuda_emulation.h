// Runs CUDA kernels on the host: a stand-in for the CUDA execution model, precise enough
// to test the tiling, shared memory and warp-level code of src/kernels/cuda without a GPU.
// Each thread of a block is a fiber (ucontext) and the block's fibers take turns, in a
// new random order each round; a fiber runs until it reaches __syncthreads or a warp
// shuffle, where it waits for the others of its block or warp, so barriers and shuffles
// see exactly what they see on a GPU. Blocks run one after another. Shared memory starts
// filled with 0x7f bytes (3.4e38 as floats), so a read of something no thread wrote shows
// in the results. A barrier that some threads never reach (divergent code) is reported,
// not hung on. Threads that have returned no longer count at barriers, as on current GPUs.
//
// Include this before any kernel header (.cuh); kernels are then called through launch().
#pragma once
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#define LATHE_CUDA_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

namespace lathe::emu {

struct Barrier {
  int expected = 0, count = 0;
  uint64_t generation = 0;
};

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;  // uninitialized: 1024 threads would zero 64 MiB
  uint3 thread;
  bool done = false;
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  int current = 0;
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<std::array<uint64_t, 32>> exchange;  // one shuffle slot per lane
  std::vector<char> shared;                        // dynamic shared memory
  std::function<void()> body;
  uint64_t progress = 0;  // barriers released and fibers finished
  int vote = 0;           // __syncthreads_or
};

inline Block* g_block = nullptr;

inline void yield() {
  Block& b = *g_block;
  swapcontext(&b.fibers[size_t(b.current)].context, &b.scheduler);
}

inline void release(Barrier& bar) {
  bar.count = 0;
  ++bar.generation;
  ++g_block->progress;
}

inline void wait(Barrier& bar) {
  const uint64_t gen = bar.generation;
  if (++bar.count >= bar.expected) return release(bar);
  while (bar.generation == gen) yield();
}

inline int lane() { return int(threadIdx.x) & 31; }
inline int warp() { return int(threadIdx.x) >> 5; }

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(g_block->shared.data());
}

template <class T>
T shuffle(T v, int src) {
  static_assert(sizeof(T) <= 8);
  Block& b = *g_block;
  auto& slots = b.exchange[size_t(warp())];
  std::memcpy(&slots[size_t(lane())], &v, sizeof(T));
  wait(b.warps[size_t(warp())]);
  T r;
  std::memcpy(&r, &slots[size_t(src & 31)], sizeof(T));
  wait(b.warps[size_t(warp())]);  // every lane has read before the next shuffle writes
  return r;
}

inline void fiber_main() {
  Block& b = *g_block;
  b.body();
  Fiber& f = b.fibers[size_t(b.current)];
  f.done = true;
  ++b.progress;
  // A returned thread no longer counts at its block's and warp's barriers.
  Barrier& w = b.warps[size_t(int(f.thread.x) >> 5)];
  if (--b.block.expected > 0 && b.block.count >= b.block.expected) release(b.block);
  if (--w.expected > 0 && w.count >= w.expected) release(w);
}  // returns to the scheduler through uc_link

// getcontext returns twice, as setjmp does: alone in its own function, no caller's
// variable can be clobbered by the second return.
constexpr size_t kFiberStack = 64 << 10;  // the kernels keep at most a few KB there

[[gnu::noinline]] inline void init_fiber(Fiber& f, ucontext_t* link) {
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack.get();
  f.context.uc_stack.ss_size = kFiberStack;
  f.context.uc_link = link;
  makecontext(&f.context, fiber_main, 0);
}

// Runs kernel() as the threads of every block of grid (1-D blocks of a multiple of 32).
inline void launch(dim3 grid, dim3 block, size_t shared_bytes,
                   const std::function<void()>& kernel) {
  if (block.y != 1 || block.z != 1 || block.x % 32 != 0 || block.x > 1024)
    throw std::invalid_argument("emulated blocks are 1-D, a multiple of 32 threads");
  const int n = int(block.x);
  Block b;
  b.fibers.resize(size_t(n));
  for (Fiber& f : b.fibers) f.stack.reset(new char[kFiberStack]);
  b.body = kernel;
  gridDim = grid;
  blockDim = block;
  Block* saved = g_block;
  g_block = &b;
  std::vector<int> order(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) order[size_t(t)] = t;
  std::mt19937 rng(12345);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        b.shared.assign(shared_bytes + 16, char(0x7f));
        b.block = Barrier{n, 0, 0};
        b.warps.assign(size_t(n / 32), Barrier{32, 0, 0});
        b.exchange.assign(size_t(n / 32), {});
        b.vote = 0;
        for (int t = 0; t < n; ++t) {
          Fiber& f = b.fibers[size_t(t)];
          f.done = false;
          f.thread = uint3{unsigned(t), 0, 0};
          init_fiber(f, &b.scheduler);
        }
        for (int finished = 0; finished < n;) {
          const uint64_t before = b.progress;
          finished = 0;
          // Each round in a new order (fixed seed: reproducible), so that what one thread
          // writes and another reads without a barrier between them shows in the results.
          std::shuffle(order.begin(), order.end(), rng);
          for (int t : order) {
            Fiber& f = b.fibers[size_t(t)];
            if (f.done) {
              ++finished;
              continue;
            }
            b.current = t;
            threadIdx = f.thread;
            swapcontext(&b.scheduler, &f.context);
          }
          if (b.progress == before && finished < n) {
            g_block = saved;
            throw std::logic_error(
                "emulated kernel deadlocked: a barrier or shuffle that not "
                "every thread of its block or warp reaches");
          }
        }
      }
  g_block = saved;
}

// kernel<<<grid, block, shared, stream>>>(args...) of the launchers, through
// LATHE_LAUNCH (src/kernels/cuda/reduce.cuh).
template <class Kernel>
struct Launch {
  // A constructor, not aggregate initialization: clang before 16 cannot initialize an
  // aggregate from parentheses, which is how the launch macro spells it.
  Launch(dim3 g, dim3 b, size_t s, Kernel k) : grid(g), block(b), shared(s), kernel(k) {}
  dim3 grid, block;
  size_t shared;
  Kernel kernel;
  template <class... Args>
  void operator()(Args... args) const {
    launch(grid, block, shared, [&] { kernel(args...); });
  }
};
template <class Kernel>
Launch(dim3, dim3, size_t, Kernel) -> Launch<Kernel>;

}  // namespace lathe::emu

// What the launchers use of the CUDA runtime.
using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel, cudaFuncAttribute, int) {
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}

inline void __syncthreads() { lathe::emu::wait(lathe::emu::g_block->block); }
inline int __syncthreads_or(int p) {
  auto& b = *lathe::emu::g_block;
  b.vote |= p != 0;
  lathe::emu::wait(b.block);
  const int r = b.vote;
  lathe::emu::wait(b.block);
  if (threadIdx.x == 0) b.vote = 0;
  lathe::emu::wait(b.block);
  return r;
}
template <class T>
T __shfl_sync(unsigned, T v, int src) {
  return lathe::emu::shuffle(v, src);
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return lathe::emu::shuffle(v, lathe::emu::lane() ^ mask);
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline int atomicMin(int* p, int v) {  // fibers never interleave inside a call
  const int old = *p;
  *p = std::min(old, v);
  return old;
}
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
