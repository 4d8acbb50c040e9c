/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * events.h: the waits of a libcurl multi handle, done here with poll(2).
 *
 * libcurl says which of its sockets it waits on, and for what, and when
 * its next timeout falls (its socket interface); a wait polls those
 * sockets and hands libcurl only what is ready, with what it is ready
 * for. curl_multi_perform instead looks at every transfer on every turn,
 * with a poll(2) of its own for each: one system call in seven of the
 * forwarder's, where a system call costs a microsecond and more.
 * One thread waits; events_wake is the one call any thread may make.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <stdint.h>

#include <curl/curl.h>

#include "echopost.h"

struct events;

struct events	*events_open(CURLM *, char [CAUSE_SIZE]);
void		 events_close(struct events *);
int		 events_run_due(struct events *);
int		 events_wait(struct events *, int64_t, unsigned int);
void		 events_wake(struct events *);

#endif
