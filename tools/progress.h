/*
 * progress.h — the progress line of revfsctl's long operations, on stderr
 * and only when stderr is a terminal: a bar when the total is known, the
 * count and the rate always.  Header-only: the Makefile turns each
 * C file under tools/ into its own program.
 *
 *   restore  [##########..........]  52%  12.0/23.1 MiB  48.2 MiB/s
 *   save     184320 records  31.5 MiB  61.0 MiB/s
 */
#ifndef REVFS_TOOLS_PROGRESS_H
#define REVFS_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_WIDTH 20

struct progress {
	const char *label;
	const char *unit; /* "bytes" are shown as MiB */
	bool on;          /* stderr is a terminal and not quiet */
	bool drawn;       /* a line is on the screen: clear it to print */
	double start, last;
	uint64_t done, total; /* the last figures reported */
};

static inline double progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void progress_init(struct progress *p, const char *label,
                                 const char *unit, bool quiet)
{
	p->label = label;
	p->unit = unit;
	p->on = !quiet && isatty(STDERR_FILENO);
	p->drawn = false;
	p->start = p->last = progress_now();
	p->done = p->total = 0;
}

static inline void progress_fmt(const struct progress *p, double v, char *out,
                                size_t n)
{
	if (p->unit[0] == 'b')
		snprintf(out, n, "%.1f MiB", v / 1048576.0);
	else
		snprintf(out, n, "%.0f %s", v, p->unit);
}

static inline void progress_draw(struct progress *p, uint64_t done,
                                 uint64_t total, bool final)
{
	double now, dt;
	char d[32], t[32], r[32];

	p->done = done;
	p->total = total;
	if (!p->on)
		return;
	now = progress_now();
	dt = now - p->start;
	if (!final && now - p->last < 0.1)
		return;
	p->last = now;
	p->drawn = true;
	progress_fmt(p, (double)done, d, sizeof(d));
	progress_fmt(p, dt > 0 ? (double)done / dt : 0, r, sizeof(r));
	if (total) {
		int fill = (int)(done >= total ? PROGRESS_WIDTH
		                               : done * PROGRESS_WIDTH / total);
		char bar[PROGRESS_WIDTH + 1];

		for (int i = 0; i < PROGRESS_WIDTH; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[PROGRESS_WIDTH] = 0;
		progress_fmt(p, (double)total, t, sizeof(t));
		fprintf(stderr, "\r%-8s [%s] %3d%%  %s / %s  %s/s\033[K",
		        p->label, bar,
		        (int)(done >= total ? 100 : done * 100 / total), d, t,
		        r);
	} else {
		fprintf(stderr, "\r%-8s %s  %s/s\033[K", p->label, d, r);
	}
	fflush(stderr);
}

/* A callback for engine/snapshot.h's eng_progress_fn. */
static inline void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	progress_draw(arg, done, total, false);
}

/* Draw the final figures and end the line (only on a terminal). */
static inline void progress_done(struct progress *p, uint64_t done,
                                 uint64_t total)
{
	if (!p->on)
		return;
	progress_draw(p, done, total, true);
	fputc('\n', stderr);
	p->drawn = false;
}

/* Before printing a line to the terminal: erase a drawn progress line
 * (the next draw puts it back below). */
static inline void progress_clear(struct progress *p)
{
	if (p && p->on && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->drawn = false;
	}
}

#endif /* REVFS_TOOLS_PROGRESS_H */
