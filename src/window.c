/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * window.c: the records between the spool and the server.
 *
 * Records are read from the spool in arrival order into the window, sent
 * in that order with up to the adaptive limit in flight, and removed from
 * the spool in that order once their fate is written down: so the spool's
 * head passes only records whose fate is known, and a crash sends again at
 * most the window and what the head's last save did not cover.
 *
 * A record refused with a code that may be the endpoint's or the key's
 * (3xx, 401, 403, 404, 405, 410) is a suspect until the records after it
 * tell: one of them answered otherwise, and the refusal was the record's
 * own (failure log); ENDPOINT_RUN in a row, or all there is, refused with
 * the same code, and it is the endpoint's: nothing goes to the failure
 * log, sending stops and is tried again after a backoff, one record at a
 * time, until the endpoint takes one or refused_timeout_ms has passed.
 *
 * All of it runs on the forwarder's thread (F, echopost.h): the window
 * and its entries are that thread's alone, with no lock.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "forwarder_int.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "spool.h"
#include "util.h"

/* The answer the failure log shows for a record given up. */
#define GIVEN_UP_REASON	"given up by the administrator (echopost --give-up)"

enum verdict {
	VERDICT_OPEN,		/* the records after it have not told yet */
	VERDICT_RECORD,		/* refused for itself: failure log */
	VERDICT_ENDPOINT	/* the endpoint or the key refuses all */
};

void
entry_free(struct entry *e)
{
	free(e->data);
	free(e->body);
	free(e);
}

/* Read records into the window while it has room. */
void
window_fill(struct forwarder *f)
{
	struct entry	*e;
	int		 found;

	f->stored_all = false;
	while (f->window_count < f->window_size) {
		if ((e = calloc(1, sizeof *e)) == NULL) {
			forwarder_hold_back(f, 0);
			return;
		}
		found = spool_next(f->spool, &e->seq, &e->data, &e->size);
		if (found != 1) {
			free(e);
			if (found == 0)
				f->stored_all = true;
			else {
				log_event(LEVEL_ERROR, "spool_error", "{s:s}",
				    "error", spool_error(f->spool));
				forwarder_hold_back(f, 0);
			}
			return;
		}
		e->decoded = record_decode(e->data, e->size, &e->record);
		f->window[f->window_count++] = e;
	}
}

static void
quarantine(struct forwarder *f, struct entry *e)
{
	const char	*why = record_status_string(e->decoded);

	log_event(LEVEL_ERROR, "record_quarantined", "{s:I, s:s}", "seq",
	    (json_int_t)e->seq, "reason", why);
	if (session_quarantine(f->session, e->seq, e->data, e->size, why) ==
	    -1) {
		log_event(LEVEL_ERROR, "quarantine_error", "{s:s}", "error",
		    strerror(errno));
		forwarder_hold_back(f, 0);
		return;
	}
	f->progress.quarantined++;
	e->state = ENTRY_SETTLED;
}

/* To the failure log with body as the answer, or kept if that cannot be. */
static bool
to_failure_log(struct forwarder *f, struct entry *e, const char *body,
    size_t body_len)
{
	if (session_rejected(f->session, &e->record, e->code, body,
	    body_len) == -1) {
		log_event(LEVEL_ERROR, "failure_log_error", "{s:s}", "error",
		    strerror(errno));
		e->state = ENTRY_QUEUED;
		forwarder_hold_back(f, 0);
		return (false);
	}
	e->state = ENTRY_SETTLED;
	return (true);
}

/* Refused for good by the server. */
static void
rejected(struct forwarder *f, struct entry *e, const char *body,
    size_t body_len)
{
	log_event(LEVEL_WARN, "record_rejected", "{s:I, s:i}", "seq",
	    (json_int_t)e->seq, "code", (int)e->code);
	if (to_failure_log(f, e, body, body_len))
		f->progress.failed++;
}

/*
 * An administrator gave it up (echopost --give-up): to the failure log
 * unsent, with code 0 and that reason as the answer.
 */
static void
give_up(struct forwarder *f, struct entry *e)
{
	log_event(LEVEL_WARN, "record_given_up", "{s:I}", "seq",
	    (json_int_t)e->seq);
	e->code = 0;
	if (to_failure_log(f, e, GIVEN_UP_REASON, strlen(GIVEN_UP_REASON)))
		f->progress.given_up++;
}

static bool
paused(struct forwarder *f)
{
	return (clock_monotonic_ms() < f->paused_until_ms);
}

static void
multi_failed(struct forwarder *f)
{
	log_event(LEVEL_ERROR, "delivery_error", "{s:s}", "reason",
	    "libcurl's multi interface failed");
	forwarder_pause(f, forwarder_hold_back(f, 0));
}

/*
 * Send queued records, oldest first, while the limit allows; a refusing
 * endpoint gets one at a time. They go out at once, not at the next
 * wait, so that what the forwarder does meanwhile overlaps their trip.
 */
void
window_send(struct forwarder *f)
{
	struct entry	*e;
	unsigned int	 limit, made = 0;
	size_t		 i;

	limit = f->refused_code != 0 ? 1 :
	    concurrency_limit(&f->concurrency);
	for (i = 0; i < f->window_count && !paused(f) &&
	    http_in_flight(f->http) < limit; i++) {
		e = f->window[i];
		if (e->state != ENTRY_QUEUED)
			continue;
		if (e->decoded != RECORD_OK) {
			quarantine(f, e);
			continue;
		}
		if (spool_given_up(f->spool, e->seq)) {
			give_up(f, e);
			continue;
		}
		if (http_post(f->http, e, e->record.api_key_len > 0 ?
		    e->record.api_key : f->options->api_key,
		    e->record.pipelines, e->record.payload) == -1) {
			log_event(LEVEL_ERROR, "delivery_error", "{s:s}",
			    "reason", "cannot make the request");
			forwarder_hold_back(f, 0);
			break;
		}
		e->state = ENTRY_SENDING;
		made++;
	}
	if (made > 0 && http_kick(f->http) == -1)
		multi_failed(f);
}

/* A delivery passed: no refusal stands, this run's or a past one's. */
static void
end_refusal(struct forwarder *f)
{
	if (f->refused_code != 0)
		log_event(LEVEL_INFO, "deliveries_resumed", "{s:s}", "url",
		    f->shown_delivery_url);
	f->refused_code = 0;
	if (session_set_refused(f->session, 0, NULL) == -1)
		log_event(LEVEL_WARN, "status_file_error", "{s:s}", "error",
		    strerror(errno));
}

static void
delivered(struct forwarder *f, struct entry *e)
{
	forwarder_server_up(f);
	if (f->refused_code != 0 || f->progress.sent == 0)
		end_refusal(f);
	f->progress.sent++;
	log_event(LEVEL_DEBUG, "record_delivered", "{s:I, s:i}", "seq",
	    (json_int_t)e->seq, "code", (int)e->code);
	if (session_delivered(f->session, &e->record, e->code) == -1)
		log_event(LEVEL_WARN, "success_log_error", "{s:s}", "error",
		    strerror(errno));
	e->state = ENTRY_SETTLED;
}

static void
suspect(struct forwarder *f, struct entry *e, const struct http_answer *a)
{
	if (e->code == f->refused_code) {
		e->state = ENTRY_QUEUED;
		forwarder_hold_back(f, a->retry_after_ms);
		return;
	}
	free(e->body);
	e->body_len = 0;
	if ((e->body = malloc(a->body_len > 0 ? a->body_len : 1)) != NULL) {
		memcpy(e->body, a->body, a->body_len);
		e->body_len = a->body_len;
	}
	e->state = ENTRY_SUSPECT;
}

/* No verdict on the record: keep it, pause everything, send it again. */
static void
again(struct forwarder *f, struct entry *e, const struct http_answer *a)
{
	int64_t	wait;

	if (a->reason != NULL)
		log_event(LEVEL_INFO, "delivery_error", "{s:s}", "reason",
		    a->reason);
	if (a->outcome == DELIVERY_BUSY || a->timed_out)
		concurrency_backoff(&f->concurrency);
	if (a->code == 0)
		f->healthy = false;
	forwarder_server_down(f);
	wait = forwarder_hold_back(f, a->retry_after_ms);
	log_event(LEVEL_INFO, "record_retry", "{s:I, s:i, s:I, s:i}", "seq",
	    (json_int_t)e->seq, "code", (int)a->code, "retry_in_ms",
	    (json_int_t)wait, "concurrency",
	    (int)concurrency_limit(&f->concurrency));
	e->state = ENTRY_QUEUED;
}

static void
answered(struct forwarder *f, const struct http_answer *a)
{
	struct entry	*e = a->tag;

	e->code = a->code;
	if (a->outcome == DELIVERY_DONE || a->outcome == DELIVERY_REJECTED ||
	    a->outcome == DELIVERY_REFUSED)
		concurrency_answered(&f->concurrency, a->round_trip_us);
	switch (a->outcome) {
	case DELIVERY_DONE:
		delivered(f, e);
		break;
	case DELIVERY_REJECTED:
		rejected(f, e, a->body, a->body_len);
		break;
	case DELIVERY_REFUSED:
		suspect(f, e, a);
		break;
	case DELIVERY_BUSY:
	case DELIVERY_RETRY:
		again(f, e, a);
		break;
	}
}

/* Wait up to ms for answers, and take each. */
void
window_collect(struct forwarder *f, int64_t ms)
{
	struct http_answer	a;

	if (http_wait(f->http, ms) == -1)
		multi_failed(f);
	while (http_answer(f->http, &a) == 1)
		answered(f, &a);
}

/* What the records after suspect i say of its refusal. */
static enum verdict
judge(const struct forwarder *f, size_t i)
{
	const struct entry	*e;
	long			 code = f->window[i]->code;
	size_t			 run = 0;

	for (; i < f->window_count; i++) {
		e = f->window[i];
		if (e->state == ENTRY_SUSPECT && e->code == code) {
			if (++run >= ENDPOINT_RUN)
				return (VERDICT_ENDPOINT);
		} else if (e->state == ENTRY_SUSPECT ||
		    (e->state == ENTRY_SETTLED && e->code != 0))
			return (VERDICT_RECORD);
		else if (e->state != ENTRY_SETTLED)
			return (VERDICT_OPEN);
	}
	return (f->stored_all ? VERDICT_ENDPOINT : VERDICT_OPEN);
}

/* The endpoint refuses with code: every suspect of it waits, kept. */
static void
begin_refusal(struct forwarder *f, long code)
{
	struct entry	*e;
	size_t		 i, count = 0;

	for (i = 0; i < f->window_count; i++) {
		e = f->window[i];
		if (e->state == ENTRY_SUSPECT && e->code == code) {
			e->state = ENTRY_QUEUED;
			count++;
		}
	}
	if (f->refused_code != code) {
		f->refused_code = code;
		f->refused_since_ms = clock_monotonic_ms();
		log_event(LEVEL_ERROR, "deliveries_refused",
		    "{s:i, s:s, s:I, s:s}", "code", (int)code, "url",
		    f->shown_delivery_url, "records", (json_int_t)count,
		    "action", "keeping the spool, trying again");
		if (session_set_refused(f->session, code,
		    f->shown_delivery_url) == -1)
			log_event(LEVEL_WARN, "status_file_error", "{s:s}",
			    "error", strerror(errno));
	}
	forwarder_hold_back(f, 0);
}

void
window_judge(struct forwarder *f)
{
	struct entry	*e;
	size_t		 i;

	for (i = 0; i < f->window_count; i++) {
		e = f->window[i];
		if (e->state != ENTRY_SUSPECT)
			continue;
		switch (judge(f, i)) {
		case VERDICT_OPEN:
			return;
		case VERDICT_RECORD:
			rejected(f, e, e->body, e->body_len);
			break;
		case VERDICT_ENDPOINT:
			begin_refusal(f, e->code);
			return;
		}
	}
}

/*
 * Remove the settled records at the window's start from the spool, once
 * the success log has the lines of those delivered.
 */
void
window_retire(struct forwarder *f)
{
	struct entry	*e;
	size_t		 done = 0;

	if (session_flush(f->session) == -1)
		log_event(LEVEL_WARN, "success_log_error", "{s:s}", "error",
		    strerror(errno));
	while (done < f->window_count &&
	    f->window[done]->state == ENTRY_SETTLED) {
		e = f->window[done++];
		if (spool_remove(f->spool, e->seq, e->size) == -1) {
			log_event(LEVEL_ERROR, "spool_error", "{s:s}",
			    "error", spool_error(f->spool));
			forwarder_hold_back(f, 0);
		}
		entry_free(e);
	}
	if (done > 0) {
		f->window_count -= done;
		memmove(f->window, f->window + done,
		    f->window_count * sizeof *f->window);
	}
}
