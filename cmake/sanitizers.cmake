# Sanitizer builds (scripts/sanitize.sh, scripts/fuzz.sh). Flags are added for every target
# of the project, including the per-ISA kernel objects, so no code runs uninstrumented.
if(LATHE_SANITIZE AND LATHE_FUZZ)
  message(FATAL_ERROR "LATHE_SANITIZE and LATHE_FUZZ are separate builds: pick one")
endif()

# -fno-sanitize-recover: a UBSan finding aborts the process, so the test that hit it fails
# instead of printing a line nobody reads. -fno-omit-frame-pointer: full stacks in reports.
set(LATHE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
                          -fno-omit-frame-pointer)

if(LATHE_SANITIZE)
  add_compile_options(${LATHE_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined)
  # GCC 12's flow analysis sees through ASan's instrumentation badly and reports
  # maybe-uninitialized inside libstdc++'s own std::regex (std::function moves in
  # regex_automaton.h, from tests/train/config_test.cpp); the normal -Werror build keeps
  # the warning, so lathe's code is still checked by it.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # As in the fuzz build below: instrumented loads keep `#pragma omp simd` loops scalar,
    # and GCC-only warning groups in pragmas are unknown to clang.
    add_compile_options(-Wno-pass-failed -Wno-unknown-warning-option)
  endif()
endif()

if(LATHE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LATHE_FUZZ needs clang (libFuzzer): configure with CMAKE_CXX_COMPILER=clang++")
  endif()
  # The engine gets coverage instrumentation without libFuzzer's main(); only the fuzz
  # targets link -fsanitize=fuzzer (fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link ${LATHE_SANITIZER_FLAGS})
  # The kernels' `#pragma omp simd` loops cannot be vectorized once every load is
  # instrumented, and clang says so as a warning (-Wpass-failed); speed is not what this
  # build is for.
  # Pragmas that silence GCC-only warnings (src/core/dtype.cpp) name groups clang lacks.
  add_compile_options(-Wno-pass-failed -Wno-unknown-warning-option)
  add_link_options(-fsanitize=address,undefined)
endif()
