/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * progress.c: replay_progress events, and the bar for a terminal; stdout
 * keeps its JSON lines.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "progress.h"
#include "util.h"

#define LINE_MS		1000
#define BAR_MS		200
#define BAR_WIDTH	24

void
progress_init(struct progress *p, bool bar)
{
	memset(p, 0, sizeof *p);
	p->bar = bar;
	p->last_line_ms = p->started_ms = clock_monotonic_ms();
}

/* The server became healthy: the rate counts from now. */
void
progress_start(struct progress *p)
{
	p->started_ms = clock_monotonic_ms();
}

static bool
bar_due(const struct progress *p, int64_t now)
{
	return (p->bar && now - p->last_bar_ms >= BAR_MS);
}

static bool
line_due(const struct progress *p, int64_t now)
{
	return (now - p->last_line_ms >= LINE_MS);
}

static void
draw_bar(struct progress *p, uint64_t left, int64_t now, bool last)
{
	uint64_t	 done, total;
	double		 rate;
	char		 bar[BAR_WIDTH + 1];
	int		 filled, eta;

	if (!last && !bar_due(p, now))
		return;
	p->last_bar_ms = now;
	done = p->sent + p->failed;
	total = done + left;
	rate = now > p->started_ms ? done * 1000.0 / (now - p->started_ms) :
	    0;
	filled = total > 0 ? (int)(done * BAR_WIDTH / total) : BAR_WIDTH;
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	eta = rate > 0 ? (int)(left / rate) : 0;
	fprintf(stderr, "\r[%s] %llu sent, %llu failed, %llu left, %.0f/s, "
	    "ETA %d:%02d:%02d \033[K%s", bar, (unsigned long long)p->sent,
	    (unsigned long long)p->failed, (unsigned long long)left, rate,
	    eta / 3600, eta / 60 % 60, eta % 60, last ? "\n" : "");
}

/* Is a line or the bar due? Counting what is left costs two locks. */
bool
progress_due(const struct progress *p)
{
	int64_t	now = clock_monotonic_ms();

	return (line_due(p, now) || bar_due(p, now));
}

/*
 * Tell how far the replay is: left records remain, with concurrency
 * requests allowed in flight. force: now, and the bar's last line.
 */
void
progress_report(struct progress *p, uint64_t left, unsigned int concurrency,
    bool force)
{
	int64_t	now, elapsed;

	now = clock_monotonic_ms();
	if (p->bar)
		draw_bar(p, left, now, force);
	if (!force && !line_due(p, now))
		return;
	elapsed = now - p->last_line_ms;
	if (elapsed <= 0)
		elapsed = 1;
	log_event(LEVEL_INFO, "replay_progress", "{s:I, s:I, s:I, s:f, s:i}",
	    "sent", (json_int_t)p->sent, "failed", (json_int_t)p->failed,
	    "remaining", (json_int_t)left, "rate",
	    (double)(p->sent - p->sent_at_last_line) * 1000 / elapsed,
	    "concurrency", (int)concurrency);
	p->sent_at_last_line = p->sent;
	p->last_line_ms = now;
}
