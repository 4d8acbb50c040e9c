/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * session.h: the files of one run under DIR.
 *
 * A run writes its story in DIR/session-YYYY-MM-DDTHH-MM-SSZ/: the event
 * log (agent.log), the delivered records (agent-success.log) and the ones
 * the server refused for good (agent-failure.log). DIR/agent-status.lock
 * tells the SDK's peers that the server is considered down; records that
 * cannot be decoded go to DIR/echopost-quarantine.jsonl; DIR/echopost.refused
 * says which code the server refuses every delivery with, and
 * DIR/echopost.status how the running one is doing.
 */
#ifndef SESSION_H
#define SESSION_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "echopost.h"
#include "record.h"

struct session;

struct session *session_open(int, const char *, char [CAUSE_SIZE]);
const char *session_path(const struct session *);
int	 session_delivered(struct session *, const struct record *, long);
int	 session_flush(struct session *);
int	 session_rejected(struct session *, const struct record *, long,
	    const char *, size_t);
int	 session_quarantine(struct session *, uint64_t, const void *, size_t,
	    const char *);
int	 session_set_server_down(struct session *, bool);
int	 session_set_refused(struct session *, long, const char *);
int	 session_publish(struct session *, const char *);
void	 session_close(struct session *);
void	 session_prune(struct session *, int);
int	 session_latest(int, char *, size_t);

#endif
