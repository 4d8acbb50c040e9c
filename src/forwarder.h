/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * forwarder.h: health checks and delivery to the Data Nadhi server.
 *
 * The forwarder runs in its own thread. It checks the server until it is
 * healthy, then sends the spool's records oldest first, with as many
 * requests in flight as the server takes (concurrency.h), and removes
 * them in that order once the server has answered for each. When the
 * spool is empty and the server healthy it asks main to stop listening,
 * delivers what the listener stored meanwhile, and ends. Whenever it
 * waits, it lets the spool seal the journals the listener has closed
 * (spool_settle).
 */
#ifndef FORWARDER_H
#define FORWARDER_H

#include <stdbool.h>
#include <stdint.h>

#include "echopost.h"
#include "options.h"

struct session;
struct spool;

enum forwarder_result {
	FORWARDER_DRAINED,	/* spool empty: server healthy, or no logs come */
	FORWARDER_STOPPED,	/* told to stop; the rest stays spooled */
	FORWARDER_REFUSED,	/* the endpoint refused deliveries too long */
	FORWARDER_FAILED	/* could not start */
};

struct forwarder;

struct forwarder *forwarder_start(const struct options *, bool,
		    struct spool *, struct session *, char [CAUSE_SIZE]);
bool		 forwarder_wants_drain(struct forwarder *);
void		 forwarder_listener_closed(struct forwarder *);
bool		 forwarder_done(struct forwarder *, int64_t);
void		 forwarder_stop(struct forwarder *);
enum forwarder_result forwarder_join(struct forwarder *, uint64_t *,
		    uint64_t *);

int64_t		 backoff_ms(int64_t, unsigned int);

#endif
