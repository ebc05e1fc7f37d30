#pragma once
// A property that must hold for every input: a failure aborts, so libFuzzer keeps the input as a
// crash. (assert() is compiled out in RelWithDebInfo builds.)
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)
