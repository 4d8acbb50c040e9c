/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * events.c: libcurl's sockets and timer, waited on with poll(2).
 *
 * fds[0] is the read end of a pipe that events_wake writes to; the others
 * are the sockets libcurl waits on, as its socket callback last said.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <curl/curl.h>

#include "events.h"
#include "util.h"

#define FIRST_ROOM	8

struct ready {
	curl_socket_t	 fd;
	int		 bits;		/* CURL_CSELECT_* */
};

/*
 * Who may touch what, in the letters of echopost.h: the thread that waits
 * is the forwarder's (F); events_wake, from any thread, only writes to
 * wake[1].
 */
struct events {
	CURLM		*multi;		/* [I] */
	int		 wake[2];	/* [I] */
	struct pollfd	*fds;		/* [F] */
	struct ready	*ready;		/* [F] room for as many as fds */
	size_t		 count;		/* [F] */
	size_t		 room;		/* [F] */
	int64_t		 timer_due_ms;	/* [F] -1: no timer */
	unsigned int	 timer_set;	/* [F] times libcurl set it */
	int		 running;	/* [F] transfers not finished */
	bool		 unwatched;	/* [F] a socket found no room */
};

static int
grow(struct events *ev)
{
	struct pollfd	*fds;
	struct ready	*ready;
	size_t		 room = ev->room * 2;

	if ((fds = reallocarray(ev->fds, room, sizeof *fds)) == NULL)
		return (-1);
	ev->fds = fds;
	if ((ready = reallocarray(ev->ready, room, sizeof *ready)) == NULL)
		return (-1);
	ev->ready = ready;
	ev->room = room;
	return (0);
}

/*
 * libcurl's socket callback: what it waits for on s, now. A failure here
 * would abort every transfer of the multi handle for good; a socket that
 * finds no room is left unwatched instead, and its transfer ends at its
 * timeout, to be tried again.
 */
static int
note_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
	struct events	*ev = arg;
	size_t		 i;

	for (i = 1; i < ev->count && ev->fds[i].fd != s; i++)
		continue;
	if (what == CURL_POLL_REMOVE) {
		if (i < ev->count)
			ev->fds[i] = ev->fds[--ev->count];
		return (0);
	}
	if (i == ev->count) {
		if (ev->count == ev->room && grow(ev) == -1) {
			ev->unwatched = true;
			return (0);
		}
		ev->fds[ev->count++].fd = s;
	}
	ev->fds[i].events = ((what & CURL_POLL_IN) ? POLLIN : 0) |
	    ((what & CURL_POLL_OUT) ? POLLOUT : 0);
	return (0);
}

/* libcurl's timer callback: its next timeout, -1 for none. */
static int
note_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct events	*ev = arg;

	ev->timer_due_ms = timeout_ms < 0 ? -1 :
	    clock_monotonic_ms() + timeout_ms;
	ev->timer_set++;
	return (0);
}

static int
detach(CURLM *multi)
{
	return (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
	    (curl_socket_callback)NULL) == CURLM_OK &&
	    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
	    (curl_multi_timer_callback)NULL) == CURLM_OK ? 0 : -1);
}

/* The waits of multi, or NULL and why. */
struct events *
events_open(CURLM *multi, char cause[CAUSE_SIZE])
{
	struct events	*ev;

	if ((ev = calloc(1, sizeof *ev)) == NULL) {
		cause_set(cause, errno, "events");
		return (NULL);
	}
	ev->multi = multi;
	ev->timer_due_ms = -1;
	ev->room = FIRST_ROOM;
	ev->wake[0] = ev->wake[1] = -1;
	if ((ev->fds = calloc(ev->room, sizeof *ev->fds)) == NULL ||
	    (ev->ready = calloc(ev->room, sizeof *ev->ready)) == NULL ||
	    compat_pipe2(ev->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		cause_set(cause, errno, "events");
		events_close(ev);
		return (NULL);
	}
	ev->fds[0].fd = ev->wake[0];
	ev->fds[0].events = POLLIN;
	ev->count = 1;
	if (curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, (void *)ev) !=
	    CURLM_OK || curl_multi_setopt(multi, CURLMOPT_TIMERDATA,
	    (void *)ev) != CURLM_OK ||
	    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, note_socket) !=
	    CURLM_OK || curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
	    note_timer) != CURLM_OK) {
		cause_set(cause, 0, "cannot hand libcurl's waits to poll(2)");
		/* Freed only where libcurl can no longer call into it. */
		if (detach(multi) == 0)
			events_close(ev);
		return (NULL);
	}
	return (ev);
}

/* After curl_multi_cleanup, which tells the socket callback still. */
void
events_close(struct events *ev)
{
	if (ev == NULL)
		return;
	if (ev->wake[0] != -1)
		close(ev->wake[0]);
	if (ev->wake[1] != -1)
		close(ev->wake[1]);
	free(ev->fds);
	free(ev->ready);
	free(ev);
}

/* -1 also once for a socket left unwatched: the caller says so. */
static int
act(struct events *ev, curl_socket_t fd, int bits)
{
	if (curl_multi_socket_action(ev->multi, fd, bits, &ev->running) !=
	    CURLM_OK)
		return (-1);
	if (ev->unwatched) {
		ev->unwatched = false;
		return (-1);
	}
	return (0);
}

/*
 * Do what libcurl's timer has due: a transfer just added starts so.
 * libcurl rounds its timeout down to the millisecond, so the timer may
 * come due a little early; libcurl then finds nothing to do and does not
 * set the timer again, for it still has the same next timeout. As libcurl
 * itself would, look again a millisecond later.
 */
int
events_run_due(struct events *ev)
{
	unsigned int	set = ev->timer_set;

	if (ev->timer_due_ms < 0 || ev->timer_due_ms > clock_monotonic_ms())
		return (0);
	if (act(ev, CURL_SOCKET_TIMEOUT, 0) == -1)
		return (-1);
	if (ev->timer_set == set)
		ev->timer_due_ms = clock_monotonic_ms() + 1;
	return (0);
}

static int
until_timer(const struct events *ev, int64_t timeout_ms)
{
	int64_t	left;

	if (timeout_ms > INT_MAX)
		timeout_ms = INT_MAX;
	if (ev->timer_due_ms >= 0) {
		left = ev->timer_due_ms - clock_monotonic_ms();
		if (left < timeout_ms)
			timeout_ms = left > 0 ? left : 0;
	}
	return ((int)timeout_ms);
}

/* A hang-up or an error is news for whatever libcurl waits for. */
static int
select_bits(const struct pollfd *p)
{
	int	bits = 0;

	if ((p->events & POLLIN) && (p->revents & (POLLIN | POLLHUP |
	    POLLERR)))
		bits |= CURL_CSELECT_IN;
	if ((p->events & POLLOUT) && (p->revents & (POLLOUT | POLLHUP |
	    POLLERR)))
		bits |= CURL_CSELECT_OUT;
	if (p->revents & (POLLERR | POLLNVAL))
		bits |= CURL_CSELECT_ERR;
	return (bits);
}

/*
 * The sockets poll found ready, set apart: handing one to libcurl may
 * change fds under the loop.
 */
static size_t
take_ready(struct events *ev)
{
	size_t	i, n = 0;
	int	bits;

	for (i = 1; i < ev->count; i++)
		if ((bits = select_bits(&ev->fds[i])) != 0) {
			ev->ready[n].fd = ev->fds[i].fd;
			ev->ready[n++].bits = bits;
		}
	return (n);
}

static void
drain_wake(struct events *ev)
{
	char	buf[64];

	while (read(ev->wake[0], buf, sizeof buf) > 0)
		continue;
}

/*
 * Move the transfers on: what libcurl's timer has due, then, unless fewer
 * than in_flight transfers still run (an answer waits to be taken), a
 * wait of at most timeout_ms for libcurl's sockets, which events_wake
 * cuts short.
 */
int
events_wait(struct events *ev, int64_t timeout_ms, unsigned int in_flight)
{
	size_t	ready, i;

	if (events_run_due(ev) == -1)
		return (-1);
	if ((unsigned int)ev->running < in_flight)
		return (0);
	if (poll(ev->fds, ev->count, until_timer(ev, timeout_ms)) == -1)
		return (errno == EINTR ? 0 : -1);
	if (ev->fds[0].revents != 0)
		drain_wake(ev);
	ready = take_ready(ev);
	for (i = 0; i < ready; i++)
		if (act(ev, ev->ready[i].fd, ev->ready[i].bits) == -1)
			return (-1);
	return (events_run_due(ev));
}

/* From any thread. A full pipe has a wake-up pending already. */
void
events_wake(struct events *ev)
{
	while (write(ev->wake[1], "", 1) == -1 && errno == EINTR)
		continue;
}
