/* tests/fuzz/fuzz_targets.h - one libFuzzer entry point per parser. Each
 * fuzz_<name>.c defines LLVMFuzzerTestOneInput; replay.c runs a corpus
 * through it in ordinary builds, so fixed crashes stay fixed. */
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
