/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * forwarder_int.h: the forwarder's own structures, shared by its two files
 * and by no other module.
 *
 * forwarder.c owns the thread: its life, the health checks, the pauses
 * and when to finish. window.c owns the records between the spool and
 * the server: read ahead in arrival order, sent, answered, judged, and
 * removed from the spool in order.
 */
#ifndef FORWARDER_INT_H
#define FORWARDER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concurrency.h"
#include "forwarder.h"
#include "http.h"
#include "progress.h"
#include "record.h"

/* So many records in a row refused alike: the endpoint, not the logs. */
#define ENDPOINT_RUN		8

enum entry_state {
	ENTRY_QUEUED,		/* to send, or to quarantine */
	ENTRY_SENDING,
	ENTRY_SUSPECT,		/* refused with a code that may be the endpoint's */
	ENTRY_SETTLED		/* its fate is written down: to remove */
};

struct entry {
	uint64_t		 seq;
	void			*data;
	size_t			 size;
	struct record		 record;
	enum record_status	 decoded;
	enum entry_state	 state;
	long			 code;		/* the last answer's; 0: none */
	char			*body;		/* a suspect's answer */
	size_t			 body_len;
};

/*
 * Who may touch what:
 *	[I]	set before the thread starts, then only read
 *	[L]	under lock: main's thread and the forwarder's
 *	[S]	set by forwarder_stop from any thread, read by the forwarder's
 *	(none)	the forwarder thread's own
 */
struct forwarder {
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;
	atomic_bool		 stopping;		/* [S] */
	bool			 listener_closed;	/* [L] */
	bool			 wants_drain;		/* [L] */
	bool			 done;			/* [L] */
	enum forwarder_result	 result;		/* read after join */

	const struct options	*options;		/* [I] */
	struct spool		*spool;			/* [I] */
	struct session		*session;		/* [I] */
	struct http		*http;			/* [I] */
	char			*shown_delivery_url;		/* [I] password hidden */

	struct entry		**window;	/* oldest first */
	size_t			 window_count;
	size_t			 window_size;
	bool			 stored_all;	/* the spool had no more */
	struct concurrency	 concurrency;
	struct progress		 progress;
	bool			 healthy;
	bool			 port_closed;	/* at the last health check */
	unsigned int		 failures;
	int64_t			 paused_until_ms;
	long			 refused_code;	/* the endpoint's; 0: none */
	int64_t			 refused_since_ms;
	int64_t			 settled_ms;
	bool			 settle_failed;
	int64_t			 published_ms;	/* DIR/echopost.status */
};

/* forwarder.c */
int64_t	 forwarder_hold_back(struct forwarder *, int64_t);
void	 forwarder_pause(struct forwarder *, int64_t);
void	 forwarder_server_down(struct forwarder *);
void	 forwarder_server_up(struct forwarder *);

/* window.c */
void	 entry_free(struct entry *);
void	 window_fill(struct forwarder *);
void	 window_send(struct forwarder *);
void	 window_collect(struct forwarder *, int64_t);
void	 window_judge(struct forwarder *);
void	 window_retire(struct forwarder *);

#endif
