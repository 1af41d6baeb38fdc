/*
 * fuzz_opts.c — libFuzzer target for the daemon's option parser
 * (daemon/rv_opts.c).  The input is split on NUL bytes into argv (after
 * "revfs"); the first argument is also fed to the value parsers.
 * Properties: no crash, no leak, no read past the arguments; a successful
 * parse has a mountpoint and, unless --help/--version, either a data
 * directory (local backend) or endpoints (backend=etcd).
 */
#include "daemon/rv_opts.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[MAX_ARGS + 2], err[256];
	struct rv_opts o;
	enum eng_auto_compact ac;
	enum eng_sync sm;
	uint64_t sz;
	int64_t v;
	int argc = 1, iv;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	argv[0] = "revfs";
	for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	(void)rv_parse_size(argv[1], &sz);
	(void)rv_parse_duration_ms(argv[1], &v);
	(void)rv_parse_auto_compact(argv[1], &ac, &v);
	(void)rv_parse_sync(argv[1], &sm, &iv);
	/* The default data dir must not depend on the fuzzer's HOME. */
	setenv("HOME", "/nonexistent", 1);
	if (rv_opts_parse(argc, argv, &o, err, sizeof(err)) == 0 && !o.help &&
	    !o.version) {
		FUZZ_CHECK(o.mountpoint != NULL);
		/* The etcd backend needs endpoints, the local one a store. */
		if (o.backend && !strcmp(o.backend, "etcd"))
			FUZZ_CHECK(o.endpoints != NULL);
		else
			FUZZ_CHECK(o.data_dir != NULL && !o.endpoints);
	}
	rv_opts_free(&o);
	free(buf);
	return 0;
}
