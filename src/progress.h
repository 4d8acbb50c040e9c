/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * progress.h: how a replay goes, told as replay_progress events once a
 * second and, for a person at a terminal, as a bar on stderr.
 *
 * Every field is the forwarder's thread's (F, echopost.h): no lock; main's
 * thread reads failed and quarantined after the join.
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	bool		 bar;		/* draw one on stderr */
	uint64_t	 sent;
	uint64_t	 failed;		/* refused by the server */
	uint64_t	 given_up;	/* by the administrator */
	uint64_t	 quarantined;
	uint64_t	 sent_at_last_line;
	int64_t		 last_line_ms;
	int64_t		 started_ms;
	int64_t		 last_bar_ms;
};

void	 progress_init(struct progress *, bool);
void	 progress_start(struct progress *);
bool	 progress_due(const struct progress *);
void	 progress_report(struct progress *, uint64_t, unsigned int, bool);

#endif
