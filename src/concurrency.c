/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * concurrency.c: the adaptive limit on requests in flight.
 *
 * A round is as many answers as the limit was when it began: about one
 * round trip's worth. Its mean round trip is set against the floor, the
 * least round mean of the last FLOOR_ROUNDS rounds (so that a server that
 * became slower for good is measured against its new self, not the old).
 * Near the floor, the server has room: one more. Well above it, requests
 * queue at the server: a quarter fewer. In between, as it is.
 */
#include "config.h"

#include "concurrency.h"

/* A round mean up to this times the floor is near it. */
#define NEAR_FLOOR	1.5
/* Above this times the floor, requests queue at the server. */
#define ABOVE_FLOOR	2.0
#define CUT		0.75
#define FLOOR_ROUNDS	64

void
concurrency_init(struct concurrency *c, unsigned int cap)
{
	c->cap = cap > 0 ? cap : 1;
	c->limit = 1;
	c->floor_us = 0;
	c->period_floor_us = 0;
	c->rounds = 0;
	c->round_sum_us = 0;
	c->round_answers = 0;
}

unsigned int
concurrency_limit(const struct concurrency *c)
{
	return ((unsigned int)c->limit);
}

static void
set_limit(struct concurrency *c, double limit)
{
	if (limit < 1)
		limit = 1;
	if (limit > c->cap)
		limit = c->cap;
	c->limit = limit;
	c->round_sum_us = 0;
	c->round_answers = 0;
}

static void
note_floor(struct concurrency *c, int64_t mean_us)
{
	if (c->floor_us == 0 || mean_us < c->floor_us)
		c->floor_us = mean_us;
	if (c->period_floor_us == 0 || mean_us < c->period_floor_us)
		c->period_floor_us = mean_us;
	if (++c->rounds >= FLOOR_ROUNDS) {
		c->floor_us = c->period_floor_us;
		c->period_floor_us = 0;
		c->rounds = 0;
	}
}

/* A request was answered in round_trip_us. */
void
concurrency_answered(struct concurrency *c, int64_t round_trip_us)
{
	int64_t	mean_us;

	c->round_sum_us += round_trip_us;
	if (++c->round_answers < concurrency_limit(c))
		return;
	mean_us = c->round_sum_us / c->round_answers;
	note_floor(c, mean_us);
	if (mean_us <= c->floor_us * NEAR_FLOOR)
		set_limit(c, c->limit + 1);
	else if (mean_us > c->floor_us * ABOVE_FLOOR)
		set_limit(c, c->limit * CUT);
	else
		set_limit(c, c->limit);
}

/* The server is busy, or did not answer in time. */
void
concurrency_backoff(struct concurrency *c)
{
	set_limit(c, c->limit / 2);
}
