/*
 * fuzz_name.c — libFuzzer target for the name encoding (fs/fs_name.c).
 * Properties: any segment (without '/') encodes to a name without '/', '@'
 * or NUL that decodes back to it; a long one gets a hashed name that
 * decodes as hashed; any name that decodes as a plain segment re-encodes to
 * exactly itself (one name per segment); fs_parse_name and fs_parse_rev
 * accept any bytes without reading past them.
 */
#include "fs/fs_name.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	char out[FS_NAME_MAX + 1], *z;
	struct fs_dname dn;
	struct fs_pname pn;
	eng_rev_t rev;
	int n;

	if (size <= 2 * FS_NAME_MAX && !memchr(d, '/', size)) {
		n = fs_name_encode(d, size, true, out);
		FUZZ_CHECK(n > 0 && n <= FS_NAME_MAX);
		FUZZ_CHECK(out[n] == 0 && strlen(out) == (size_t)n);
		FUZZ_CHECK(!memchr(out, '/', (size_t)n));
		FUZZ_CHECK(!memchr(out, '@', (size_t)n));
		FUZZ_CHECK(fs_name_decode(out, (size_t)n, &dn) == 0);
		FUZZ_CHECK(!dn.twin);
		if (!dn.hashed) {
			FUZZ_CHECK(dn.len == size);
			FUZZ_CHECK(memcmp(dn.seg, d, size) == 0);
		} else {
			FUZZ_CHECK(dn.len <= size);
			FUZZ_CHECK(memcmp(dn.seg, d, dn.len) == 0);
		}
	}
	if (fs_name_decode(d, size, &dn) == 0 && !dn.twin && !dn.hashed) {
		n = fs_name_encode(dn.seg, dn.len, false, out);
		FUZZ_CHECK(n >= 0 && (size_t)n == size);
		FUZZ_CHECK(memcmp(out, d, size) == 0);
	}
	(void)fs_parse_rev(d, size, &rev);
	z = malloc(size + 1);
	if (!z)
		return 0;
	memcpy(z, d, size);
	z[size] = 0;
	if (fs_parse_name(z, &pn) == 0) {
		FUZZ_CHECK(pn.base >= z && pn.base + pn.base_len <= z + size);
	}
	free(z);
	return 0;
}
