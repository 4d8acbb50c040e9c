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
/*
 * Records read ahead per request allowed in flight: room to go on while
 * the oldest waits. The window holds that many per request, and a run.
 */
#define WINDOW_PER_REQUEST	2

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
 * Who may touch what, in the letters of echopost.h; one lock:
 *	f	lock, with the condition wake: what main's thread and the
 *		forwarder's tell each other
 * The entries in the window, the concurrency and the progress are the
 * forwarder's thread's (F) like the window; main reads result and
 * progress after the join.
 */
struct forwarder {
	pthread_t		 thread;		/* [M] */
	pthread_mutex_t		 lock;			/* f */
	pthread_cond_t		 wake;			/* [I] under f */
	atomic_bool		 stopping;		/* [A] forwarder_stop */
	bool			 listener_closed;	/* [fM] */
	bool			 wants_drain;		/* [fF] */
	bool			 done;			/* [fF] */
	enum forwarder_result	 result;		/* [F] */

	const struct options	*options;		/* [I] */
	struct spool		*spool;			/* [I] */
	struct session		*session;		/* [I] */
	struct http		*http;			/* [I] */
	char			*shown_delivery_url;	/* [I] no password */

	struct entry		**window;	/* [F] oldest first */
	size_t			 window_count;	/* [F] */
	size_t			 window_size;	/* [F] */
	bool			 stored_all;	/* [F] the spool had no more */
	struct concurrency	 concurrency;	/* [F] */
	struct progress		 progress;	/* [F] */
	bool			 healthy;	/* [F] */
	bool			 port_closed;	/* [F] at the last check */
	unsigned int		 failures;	/* [F] */
	int64_t			 paused_until_ms; /* [F] */
	long			 refused_code;	/* [F] the endpoint's, or 0 */
	int64_t			 refused_since_ms; /* [F] */
	int64_t			 settled_ms;	/* [F] */
	bool			 settle_failed;	/* [F] */
	int64_t			 published_ms;	/* [F] DIR/echopost.status */
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
