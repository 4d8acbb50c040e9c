/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * forwarder.c: the forwarder's thread: health checks until the server is
 * well, the replay loop over the window (window.c), pauses, and the end
 * of a run.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "forwarder_int.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "spool.h"
#include "util.h"

/* While waiting, closed journals are sealed this often. */
#define SETTLE_MS		250
/* While nobody listens at the server's port, it is tried this often. */
#define PROBE_MS		250
/* DIR/echopost.status is rewritten at most this often. */
#define PUBLISH_MS		1000

/*
 * Exponential backoff from base, capped at ten times base, with jitter so
 * that agents started together do not knock together: the wait is drawn
 * from the upper half of the step.
 */
int64_t
backoff_ms(int64_t base, unsigned int failures)
{
	int64_t	step = base;

	while (failures-- > 0 && step < 10 * base)
		step *= 2;
	if (step > 10 * base)
		step = 10 * base;
	return (step / 2 + arc4random_uniform((uint32_t)(step / 2) + 1));
}

static bool
stopping(struct forwarder *f)
{
	return (atomic_load(&f->stopping));
}

/* Sleep for ms, or less if told to stop. */
static void
sleep_ms(struct forwarder *f, int64_t ms)
{
	struct timespec	deadline;

	compat_cond_deadline(&deadline, ms);
	pthread_mutex_lock(&f->lock);
	while (!stopping(f) &&
	    pthread_cond_timedwait(&f->wake, &f->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->lock);
}

/*
 * Now and then, the journals the listener has closed are sealed and
 * deleted, so that they do not pile up, and a spare is made ready.
 */
static void
settle(struct forwarder *f)
{
	int64_t	now = clock_monotonic_ms();

	if (now - f->settled_ms < SETTLE_MS)
		return;
	f->settled_ms = now;
	if (spool_settle(f->spool) == -1) {
		if (!f->settle_failed)
			log_event(LEVEL_ERROR, "spool_error", "{s:s}", "error",
			    spool_error(f->spool));
		f->settle_failed = true;
	} else
		f->settle_failed = false;
}

/* Wait for ms, or less if told to stop, settling the spool meanwhile. */
void
forwarder_pause(struct forwarder *f, int64_t ms)
{
	int64_t	end, now;

	end = clock_monotonic_ms() + ms;
	while (!stopping(f) && (now = clock_monotonic_ms()) < end) {
		settle(f);
		sleep_ms(f, end - now < SETTLE_MS ? end - now : SETTLE_MS);
	}
}

/*
 * Send nothing new for a backoff, or for at_least_ms if longer; a pause
 * already long enough stays as it is, so that a burst of failed requests
 * counts as one failure. Returns how long is left of the pause.
 */
int64_t
forwarder_hold_back(struct forwarder *f, int64_t at_least_ms)
{
	int64_t	now = clock_monotonic_ms(), wait;

	if (f->paused_until_ms - now >= (at_least_ms > 0 ? at_least_ms : 1))
		return (f->paused_until_ms - now);
	wait = backoff_ms(f->options->health_interval_ms, f->failures++);
	if (wait < at_least_ms)
		wait = at_least_ms;
	f->paused_until_ms = now + wait;
	return (wait);
}

/* Only while logs are accepted: the lock tells the SDK's peers so. */
void
forwarder_server_down(struct forwarder *f)
{
	bool	accepting;

	pthread_mutex_lock(&f->lock);
	accepting = !f->listener_closed;
	pthread_mutex_unlock(&f->lock);
	if (accepting && session_set_server_down(f->session, true) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
}

void
forwarder_server_up(struct forwarder *f)
{
	f->failures = 0;
	if (session_set_server_down(f->session, false) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
}

/*
 * Wait before the next health check, for the backoff's ms. The backoff
 * spares a server that answers but is not well. A refused connection
 * costs the server nothing, though: while nobody listens, the port is
 * tried every PROBE_MS, and the health check comes as soon as it opens.
 */
static void
wait_for_server(struct forwarder *f, int64_t ms)
{
	int64_t	end = clock_monotonic_ms() + ms, now;

	if (!f->port_closed) {
		forwarder_pause(f, ms);
		return;
	}
	while (!stopping(f) && (now = clock_monotonic_ms()) < end) {
		forwarder_pause(f, end - now < PROBE_MS ? end - now : PROBE_MS);
		if (http_listening(f->http, PROBE_MS)) {
			log_event(LEVEL_INFO, "server_listening", "{}");
			return;
		}
	}
}

/*
 * Tell --status how this run is doing, at most once a second unless
 * something changed (now): DIR/echopost.status.
 */
static void
publish_status(struct forwarder *f, bool now)
{
	json_t	*status;
	char	*text, updated[TIME_BUFSIZE];
	int64_t	 ms = clock_monotonic_ms(), elapsed;
	uint64_t left, done;
	double	 rate;

	if (!now && ms - f->published_ms < PUBLISH_MS)
		return;
	f->published_ms = ms;
	left = spool_count(f->spool);
	done = f->progress.sent + f->progress.failed;
	elapsed = ms - f->progress.started_ms;
	rate = f->healthy && elapsed > 0 ? done * 1000.0 / elapsed : 0;
	format_time(clock_realtime_us(), updated);
	status = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:o, "
	    "s:s}", "pid", (int)getpid(), "mode", f->options->mode ==
	    MODE_REPLAY_ONLY ? "replay-only" : "serve", "health_url",
	    f->options->shown_url,
	    "state", f->healthy ? "delivering" : "waiting for the server",
	    "sent", (json_int_t)f->progress.sent,
	    "failed", (json_int_t)f->progress.failed,
	    "remaining", (json_int_t)left, "rate", rate,
	    "eta_s", rate > 0 ? json_integer((json_int_t)(left / rate)) :
	    json_null(), "updated", updated);
	text = status != NULL ? json_dumps(status, JSON_COMPACT) : NULL;
	json_decref(status);
	if (text == NULL || session_publish(f->session, text) == -1)
		log_event(LEVEL_DEBUG, "status_file_error", "{s:s}", "error",
		    strerror(text == NULL ? ENOMEM : errno));
	free(text);
}

static void
check_health(struct forwarder *f)
{
	struct health	health;

	if (http_check_health(f->http, &health)) {
		f->healthy = true;
		f->paused_until_ms = 0;
		forwarder_server_up(f);
		progress_start(&f->progress);
		log_event(LEVEL_INFO, "server_healthy", "{s:I}", "spooled",
		    (json_int_t)spool_count(f->spool));
		publish_status(f, true);
		return;
	}
	f->port_closed = health.refused;
	if (health.reason != NULL)
		log_event(LEVEL_INFO, "server_down", "{s:s}", "reason",
		    health.reason);
	else
		log_event(LEVEL_INFO, "server_down", "{s:s, s:i}", "reason",
		    "health check answered", "code", (int)health.code);
	forwarder_server_down(f);
	publish_status(f, f->failures == 0);
	wait_for_server(f, backoff_ms(f->options->health_interval_ms,
	    f->failures++));
}

/* Spool empty, server healthy: have the listener closed, then drain. */
static bool
ready_to_finish(struct forwarder *f)
{
	bool	closed;

	if (spool_sync(f->spool) == -1)
		log_event(LEVEL_ERROR, "spool_error", "{s:s}", "error",
		    spool_error(f->spool));
	pthread_mutex_lock(&f->lock);
	if (!f->listener_closed) {
		f->wants_drain = true;
		while (!f->listener_closed && !stopping(f))
			pthread_cond_wait(&f->wake, &f->lock);
		closed = false;
	} else
		closed = true;
	pthread_mutex_unlock(&f->lock);
	return (closed);
}

static bool
refused_too_long(struct forwarder *f)
{
	if (f->refused_code == 0 || clock_monotonic_ms() -
	    f->refused_since_ms < f->options->refused_timeout_ms)
		return (false);
	log_event(LEVEL_ERROR, "replay_given_up", "{s:i, s:s, s:I, s:I}",
	    "code", (int)f->refused_code, "url", f->shown_delivery_url,
	    "after_ms", (json_int_t)f->options->refused_timeout_ms,
	    "spooled", (json_int_t)spool_count(f->spool));
	return (true);
}

/* How long to wait for answers before looking at the window again. */
static int64_t
wait_ms(struct forwarder *f)
{
	int64_t	left = f->paused_until_ms - clock_monotonic_ms();

	if (http_in_flight(f->http) == 0 && left <= 0 && f->stored_all)
		return (SETTLE_MS);
	if (left > 0)
		return (left < SETTLE_MS ? left : SETTLE_MS);
	return (http_in_flight(f->http) > 0 ? SETTLE_MS : 0);
}

/*
 * No logs can come (--replay-only, or the listener closed) and none is
 * left: there is nothing to wait for the server for.
 */
static bool
nothing_to_replay(struct forwarder *f)
{
	bool	closed;

	pthread_mutex_lock(&f->lock);
	closed = f->listener_closed;
	pthread_mutex_unlock(&f->lock);
	return (closed && spool_empty(f->spool));
}

static void
replay(struct forwarder *f)
{
	while (!stopping(f)) {
		settle(f);
		if (!f->healthy) {
			if (http_in_flight(f->http) > 0)
				window_collect(f, SETTLE_MS);
			else if (nothing_to_replay(f)) {
				f->result = FORWARDER_DRAINED;
				break;
			} else
				check_health(f);
			continue;
		}
		if (refused_too_long(f)) {
			f->result = FORWARDER_REFUSED;
			break;
		}
		window_fill(f);
		if (f->window_count == 0 && f->stored_all) {
			if (ready_to_finish(f)) {
				f->result = FORWARDER_DRAINED;
				break;
			}
			continue;
		}
		window_send(f);
		window_collect(f, wait_ms(f));
		window_judge(f);
		/*
		 * The slots the answers freed are filled before the answers
		 * are written down, so that the server does not wait on us.
		 */
		window_send(f);
		window_retire(f);
		publish_status(f, false);
		if (progress_due(&f->progress))
			progress_report(&f->progress, spool_count(f->spool),
			    concurrency_limit(&f->concurrency), false);
	}
	if (f->progress.sent + f->progress.failed > 0)
		progress_report(&f->progress, spool_count(f->spool),
		    concurrency_limit(&f->concurrency), true);
}

static void *
forwarder_main(void *arg)
{
	struct forwarder	*f = arg;

	replay(f);
	pthread_mutex_lock(&f->lock);
	f->done = true;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
	return (NULL);
}

static void
free_forwarder(struct forwarder *f)
{
	size_t	i;

	http_close(f->http);
	for (i = 0; i < f->window_count; i++)
		entry_free(f->window[i]);
	free(f->window);
	free(f->shown_delivery_url);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static int
set_up(struct forwarder *f, char cause[CAUSE_SIZE])
{
	cause_set(cause, 0, "cannot set up the forwarder's lock");
	if (compat_cond_init(&f->wake) != 0 ||
	    pthread_mutex_init(&f->lock, NULL) != 0)
		return (-1);
	f->window_size = WINDOW_PER_REQUEST * (size_t)f->options->concurrency +
	    ENDPOINT_RUN;
	cause_set(cause, 0, "out of memory");
	if ((f->window = calloc(f->window_size, sizeof *f->window)) == NULL ||
	    (f->shown_delivery_url = delivery_url(f->options->shown_url)) == NULL)
		return (-1);
	if ((f->http = http_open(f->options, cause)) == NULL)
		return (-1);
	return (0);
}

/*
 * A running forwarder, or NULL and the cause; it reads options until it
 * is joined. A progress bar is drawn on stderr if asked for.
 */
struct forwarder *
forwarder_start(const struct options *options, bool progress_bar,
    struct spool *spool, struct session *session, char cause[CAUSE_SIZE])
{
	struct forwarder	*f;

	if ((f = calloc(1, sizeof *f)) == NULL) {
		cause_set(cause, 0, "%s", strerror(errno));
		return (NULL);
	}
	f->options = options;
	f->spool = spool;
	f->session = session;
	f->result = FORWARDER_STOPPED;
	/* --replay-only: no listener at all. */
	f->listener_closed = options->mode == MODE_REPLAY_ONLY;
	atomic_init(&f->stopping, false);
	concurrency_init(&f->concurrency, (unsigned int)options->concurrency);
	progress_init(&f->progress, progress_bar);
	if (set_up(f, cause) == -1) {
		free_forwarder(f);
		return (NULL);
	}
	if (pthread_create(&f->thread, NULL, forwarder_main, f) != 0) {
		cause_set(cause, 0, "cannot start its thread");
		free_forwarder(f);
		return (NULL);
	}
	return (f);
}

bool
forwarder_wants_drain(struct forwarder *f)
{
	bool	wants;

	pthread_mutex_lock(&f->lock);
	wants = f->wants_drain;
	pthread_mutex_unlock(&f->lock);
	return (wants);
}

/*
 * Whether the forwarder has ended, waiting up to wait_ms for it: main
 * exits as soon as it ends, not at its next look.
 */
bool
forwarder_done(struct forwarder *f, int64_t wait_ms)
{
	struct timespec	deadline;
	bool		done;

	compat_cond_deadline(&deadline, wait_ms);
	pthread_mutex_lock(&f->lock);
	while (!f->done && wait_ms > 0 &&
	    pthread_cond_timedwait(&f->wake, &f->lock, &deadline) != ETIMEDOUT)
		;
	done = f->done;
	pthread_mutex_unlock(&f->lock);
	return (done);
}

void
forwarder_listener_closed(struct forwarder *f)
{
	pthread_mutex_lock(&f->lock);
	f->listener_closed = true;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
}

void
forwarder_stop(struct forwarder *f)
{
	pthread_mutex_lock(&f->lock);
	atomic_store(&f->stopping, true);
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
	http_stop(f->http);
}

/*
 * Wait for the forwarder's thread to end; *rejected: the records the
 * server refused for good, *quarantined: those found damaged and kept in
 * the quarantine file. Both undelivered.
 */
enum forwarder_result
forwarder_join(struct forwarder *f, uint64_t *rejected,
    uint64_t *quarantined)
{
	enum forwarder_result	result;

	if (pthread_join(f->thread, NULL) != 0)
		result = FORWARDER_FAILED;
	else
		result = f->result;
	*rejected = f->progress.failed;
	*quarantined = f->progress.quarantined;
	free_forwarder(f);
	return (result);
}
