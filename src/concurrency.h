/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * concurrency.h: how many requests the forwarder keeps in flight.
 *
 * The limit adapts to the server (AIMD, as TCP's window does): it starts
 * at 1 and grows by one per round of answers while their round trip stays
 * near the least seen, and is cut when the round trip rises, and halved
 * when the server says it is busy or a request times out. Never above the
 * cap, never below 1; with a cap of 1, one request at a time.
 *
 * Every field is the forwarder's thread's (F, echopost.h): no lock.
 */
#ifndef CONCURRENCY_H
#define CONCURRENCY_H

#include <stdint.h>

struct concurrency {
	unsigned int	 cap;
	double		 limit;
	int64_t		 floor_us;	/* least round mean of this period */
	int64_t		 period_floor_us; /* the same, for the next period */
	unsigned int	 rounds;	/* in this period */
	int64_t		 round_sum_us;
	unsigned int	 round_answers;
};

void		 concurrency_init(struct concurrency *, unsigned int);
unsigned int	 concurrency_limit(const struct concurrency *);
void		 concurrency_answered(struct concurrency *, int64_t);
void		 concurrency_backoff(struct concurrency *);

#endif
