// LATHE_TEST_ASAN is defined where the tests (and so the lathe they start) are built with
// AddressSanitizer: GCC says __SANITIZE_ADDRESS__; clang says it through __has_feature.
#pragma once
#if defined(__SANITIZE_ADDRESS__)
#define LATHE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LATHE_TEST_ASAN 1
#endif
#endif
