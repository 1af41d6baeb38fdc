/*
 * fuzz.h — shared by the libFuzzer targets: FUZZ_CHECK aborts (so libFuzzer
 * records the input as a crash) when a property fails.  A program that
 * replays inputs through the targets (tests/unit/test_fuzz_replay.c)
 * defines FUZZ_CHECK first, as a cmocka assertion.
 */
#ifndef REVFS_FUZZ_H
#define REVFS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property failed: %s\n",        \
			        __FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* REVFS_FUZZ_H */
