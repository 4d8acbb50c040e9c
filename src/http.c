/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * http.c: POST /log requests in flight on one libcurl multi handle, the
 * health check and the port probe on easy handles of their own, and the
 * classes of answer.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "events.h"
#include "http.h"
#include "util.h"

/* Keep this much of a refusal's body for the failure log. */
#define BODY_KEEP		(64 * 1024)
/* Retry-After beyond this is taken as this: the logs must still go. */
#define RETRY_AFTER_MAX_MS	(10 * 60 * 1000)

/* One request in flight, or a handle waiting for the next. */
struct slot {
	CURL		*handle;
	bool		 busy;
	void		*tag;
	char		*request;	/* the body being sent */
	char		*body;		/* the answer's, up to BODY_KEEP */
	size_t		 body_len;
	bool		 headers_ended;	/* the blank line came */
	struct curl_slist *headers;	/* built for headers_key */
	char		*headers_key;
	char		 error[CURL_ERROR_SIZE];
};

struct http {
	const struct options *options;	/* one slot per --replay-concurrency */
	CURLM		*multi;
	struct events	*events;
	char		*delivery_url;
	struct slot	*slots;
	unsigned int	 in_flight;
	CURL		*health;
	char		 health_error[CURL_ERROR_SIZE];
	atomic_bool	 stopping;
};

enum delivery
classify_answer(CURLcode rc, long code)
{
	if (rc != CURLE_OK)
		return (DELIVERY_RETRY);
	if (code >= 200 && code <= 299)
		return (DELIVERY_DONE);
	if (code == 429 || code == 503)
		return (DELIVERY_BUSY);
	if (code == 408 || code > 500)
		return (DELIVERY_RETRY);
	if ((code >= 300 && code <= 399) || code == 401 || code == 403 ||
	    code == 404 || code == 405 || code == 410)
		return (DELIVERY_REFUSED);
	if (code >= 400)
		return (DELIVERY_REJECTED);
	return (DELIVERY_RETRY);	/* 1xx as a final answer: broken */
}

bool
health_answer_ok(CURLcode rc, long code)
{
	return (rc == CURLE_OK && code >= 200 && code <= 299);
}

/*
 * The health URL's path joined with "log"; its query stays a query:
 * http://h/health?probe=1 posts to http://h/health/log?probe=1.
 */
char *
delivery_url(const char *base)
{
	CURLU	*u;
	char	*path = NULL, *joined = NULL, *url = NULL, *copy = NULL;
	size_t	 len;

	if ((u = curl_url()) == NULL)
		return (NULL);
	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
		len = strlen(path);
		while (len > 0 && path[len - 1] == '/')
			len--;
		if (asprintf(&joined, "%.*s/log", (int)len, path) == -1)
			joined = NULL;
	}
	if (joined != NULL &&
	    curl_url_set(u, CURLUPART_PATH, joined, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK)
		copy = strdup(url);
	curl_free(url);
	free(joined);
	curl_free(path);
	curl_url_cleanup(u);
	return (copy);
}

static size_t
keep_body(char *data, size_t size, size_t count, void *arg)
{
	struct slot	*slot = arg;
	size_t		 len = size * count, room;

	room = BODY_KEEP - slot->body_len;
	if (len < room)
		room = len;
	memcpy(slot->body + slot->body_len, data, room);
	slot->body_len += room;
	return (len);
}

/*
 * An answer cut off in its status line or headers is no answer, though
 * curl may report the status it saw: only one whose header section ended
 * counts.
 */
static size_t
note_header(char *line, size_t size, size_t count, void *arg)
{
	struct slot	*slot = arg;
	size_t		 len = size * count;

	if ((len == 2 && line[0] == '\r' && line[1] == '\n') ||
	    (len == 1 && line[0] == '\n'))
		slot->headers_ended = true;
	return (len);
}

static size_t
discard_body(char *data, size_t size, size_t count, void *arg)
{
	return (size * count);
}

/* Lets a stop cut short a transfer that waits on a slow server. */
static int
abort_if_stopping(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct http	*h = arg;

	return (atomic_load(&h->stopping) ? 1 : 0);
}

/* Why a transfer failed: libcurl's own words, if it has them. */
static const char *
failure_reason(CURLcode rc, const char *error)
{
	return (error[0] != '\0' ? error : curl_easy_strerror(rc));
}

/*
 * What every transfer of ours shares: its URL, libcurl's words for a
 * failure in error, the CA certificates given (NULL: libcurl's own), no
 * signals (it runs in threads), and a limit on the whole of it.
 */
static CURL *
easy_handle(const struct options *o, const char *url, int64_t timeout_ms,
    char error[CURL_ERROR_SIZE])
{
	CURL	*handle;

	if ((handle = curl_easy_init()) == NULL)
		return (NULL);
	error[0] = '\0';
	if (curl_easy_setopt(handle, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error) !=
	    CURLE_OK || (o->cacert != NULL && curl_easy_setopt(handle,
	    CURLOPT_CAINFO, o->cacert) != CURLE_OK) || (o->capath != NULL &&
	    curl_easy_setopt(handle, CURLOPT_CAPATH, o->capath) !=
	    CURLE_OK) || curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L) !=
	    CURLE_OK || curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS,
	    (long)timeout_ms) != CURLE_OK) {
		curl_easy_cleanup(handle);
		return (NULL);
	}
	return (handle);
}

/* A handle for the client's transfers: http_stop cuts them short. */
static CURL *
stoppable_handle(struct http *h, const char *url, char error[CURL_ERROR_SIZE])
{
	CURL	*handle;

	if ((handle = easy_handle(h->options, url, h->options->timeout_ms,
	    error)) == NULL)
		return (NULL);
	if (curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION,
	    abort_if_stopping) != CURLE_OK ||
	    curl_easy_setopt(handle, CURLOPT_XFERINFODATA, h) != CURLE_OK) {
		curl_easy_cleanup(handle);
		return (NULL);
	}
	return (handle);
}

/*
 * A POST handle. PIPEWAIT has a request wait for a connection that may
 * multiplex rather than open one more; over HTTP/1.1 each request in
 * flight gets a keep-alive connection of its own.
 */
static int
open_slot(struct http *h, struct slot *slot)
{
	if ((slot->body = malloc(BODY_KEEP)) == NULL ||
	    (slot->handle = stoppable_handle(h, h->delivery_url,
	    slot->error)) == NULL)
		return (-1);
	if (curl_easy_setopt(slot->handle, CURLOPT_PRIVATE, slot) !=
	    CURLE_OK || curl_easy_setopt(slot->handle, CURLOPT_WRITEFUNCTION,
	    keep_body) != CURLE_OK || curl_easy_setopt(slot->handle,
	    CURLOPT_WRITEDATA, slot) != CURLE_OK ||
	    curl_easy_setopt(slot->handle, CURLOPT_HEADERFUNCTION,
	    note_header) != CURLE_OK || curl_easy_setopt(slot->handle,
	    CURLOPT_HEADERDATA, slot) != CURLE_OK ||
	    curl_easy_setopt(slot->handle, CURLOPT_PIPEWAIT, 1L) != CURLE_OK)
		return (-1);
	return (0);
}

static void
close_slot(struct http *h, struct slot *slot)
{
	if (slot->busy)
		curl_multi_remove_handle(h->multi, slot->handle);
	curl_easy_cleanup(slot->handle);
	curl_slist_free_all(slot->headers);
	free(slot->headers_key);
	free(slot->request);
	free(slot->body);
}

static int
set_up(struct http *h, char cause[CAUSE_SIZE])
{
	unsigned int	i;
	long		slots = (long)h->options->concurrency;

	if ((h->delivery_url = delivery_url(h->options->health_url)) == NULL) {
		cause_set(cause, 0, "cannot build the delivery URL");
		return (-1);
	}
	cause_set(cause, 0, "out of memory");
	if ((h->multi = curl_multi_init()) == NULL ||
	    (h->events = events_open(h->multi, cause)) == NULL ||
	    (h->slots = calloc(slots, sizeof *h->slots)) == NULL ||
	    (h->health = stoppable_handle(h, h->options->health_url,
	    h->health_error)) == NULL ||
	    curl_easy_setopt(h->health, CURLOPT_WRITEFUNCTION,
	    discard_body) != CURLE_OK)
		return (-1);
	if (curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    slots) != CURLM_OK || curl_multi_setopt(h->multi,
	    CURLMOPT_MAXCONNECTS, slots) != CURLM_OK) {
		cause_set(cause, 0, "cannot set up libcurl's multi handle");
		return (-1);
	}
	for (i = 0; i < slots; i++)
		if (open_slot(h, &h->slots[i]) == -1)
			return (-1);
	return (0);
}

/* A client, or NULL and why; it reads options until it is closed. */
struct http *
http_open(const struct options *options, char cause[CAUSE_SIZE])
{
	struct http	*h;

	if ((h = calloc(1, sizeof *h)) == NULL) {
		cause_set(cause, 0, "%s", strerror(errno));
		return (NULL);
	}
	h->options = options;
	atomic_init(&h->stopping, false);
	if (set_up(h, cause) == -1) {
		http_close(h);
		return (NULL);
	}
	return (h);
}

void
http_close(struct http *h)
{
	unsigned int	i;

	if (h == NULL)
		return;
	for (i = 0; h->slots != NULL && i < h->options->concurrency; i++)
		close_slot(h, &h->slots[i]);
	free(h->slots);
	curl_easy_cleanup(h->health);
	curl_multi_cleanup(h->multi);
	events_close(h->events);
	free(h->delivery_url);
	free(h);
}

unsigned int
http_in_flight(const struct http *h)
{
	return (h->in_flight);
}

/*
 * The request headers for key. Records nearly always carry the same key,
 * so a slot's list is built again only when the key changes.
 */
static int
use_key(struct slot *slot, const char *key)
{
	struct curl_slist	*list = NULL, *more;
	char			*key_header, *copy;
	const char		*lines[3];
	size_t			 i;

	if (slot->headers_key != NULL && strcmp(slot->headers_key, key) == 0)
		return (0);
	/* "Name:" with no value would make curl drop the header; ";" not. */
	if (asprintf(&key_header, *key == '\0' ? "DATANADHI-API-KEY;" :
	    "DATANADHI-API-KEY: %s", key) == -1)
		return (-1);
	lines[0] = "Content-Type: application/json";
	lines[1] = "Expect:";	/* no 100-continue round trip */
	lines[2] = key_header;
	for (i = 0; i < 3; i++) {
		if ((more = curl_slist_append(list, lines[i])) == NULL)
			break;
		list = more;
	}
	free(key_header);
	copy = i == 3 ? strdup(key) : NULL;
	if (copy == NULL || curl_easy_setopt(slot->handle,
	    CURLOPT_HTTPHEADER, list) != CURLE_OK) {
		free(copy);
		curl_slist_free_all(list);
		return (-1);
	}
	curl_slist_free_all(slot->headers);
	free(slot->headers_key);
	slot->headers = list;
	slot->headers_key = copy;
	return (0);
}

static struct slot *
free_slot(struct http *h)
{
	unsigned int	i;

	for (i = 0; i < h->options->concurrency; i++)
		if (!h->slots[i].busy)
			return (&h->slots[i]);
	return (NULL);
}

/*
 * Make a POST of one record with key, to go out at the next http_kick or
 * http_wait; tag comes back with its answer.
 * The body splices the stored texts in unchanged:
 * {"pipelines": [...], "log_data": <json_data as received>}.
 * -1 when every slot is busy or the request cannot be made.
 */
int
http_post(struct http *h, void *tag, const char *key, const char *pipelines,
    const char *payload)
{
	struct slot	*slot;

	if ((slot = free_slot(h)) == NULL)
		return (-1);
	if (use_key(slot, key) == -1 || asprintf(&slot->request,
	    "{\"pipelines\":%s,\"log_data\":%s}", pipelines, payload) == -1) {
		slot->request = NULL;
		return (-1);
	}
	slot->tag = tag;
	slot->body_len = 0;
	slot->headers_ended = false;
	slot->error[0] = '\0';
	if (curl_easy_setopt(slot->handle, CURLOPT_POSTFIELDS,
	    slot->request) != CURLE_OK ||
	    curl_multi_add_handle(h->multi, slot->handle) != CURLM_OK) {
		free(slot->request);
		slot->request = NULL;
		return (-1);
	}
	slot->busy = true;
	h->in_flight++;
	return (0);
}

/* Send the requests made since the last wait, now. */
int
http_kick(struct http *h)
{
	return (events_run_due(h->events));
}

/*
 * Move the transfers on, waiting at most timeout_ms for something to do,
 * unless one has finished already; http_stop ends the wait early.
 */
int
http_wait(struct http *h, int64_t timeout_ms)
{
	return (events_wait(h->events, timeout_ms, h->in_flight));
}

static void
fill_answer(struct slot *slot, CURLcode rc, struct http_answer *a)
{
	curl_off_t	retry_after = -1, total_us = 0;

	memset(a, 0, sizeof *a);
	a->tag = slot->tag;
	if (rc == CURLE_OK && !slot->headers_ended)
		rc = CURLE_PARTIAL_FILE;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(slot->handle, CURLINFO_RESPONSE_CODE,
		    &a->code);
		curl_easy_getinfo(slot->handle, CURLINFO_RETRY_AFTER,
		    &retry_after);
	} else
		a->reason = failure_reason(rc, slot->error);
	if (retry_after > 0)
		a->retry_after_ms = retry_after > RETRY_AFTER_MAX_MS / 1000 ?
		    RETRY_AFTER_MAX_MS : retry_after * 1000;
	curl_easy_getinfo(slot->handle, CURLINFO_TOTAL_TIME_T, &total_us);
	a->round_trip_us = total_us;
	a->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
	a->outcome = classify_answer(rc, a->code);
	a->body = slot->body;
	a->body_len = slot->body_len;
}

/*
 * One finished request: 1 and its answer, valid until the next call to
 * this client; 0 if none has finished. A request that http_stop cut short
 * got no answer and is not one: its slot is freed, nothing is handed back.
 */
int
http_answer(struct http *h, struct http_answer *a)
{
	struct slot	*slot;
	CURLMsg		*msg;
	CURLcode	 rc;
	int		 left;
	bool		 stopped;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE ||
		    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&slot) != CURLE_OK)
			continue;
		stopped = (rc = msg->data.result) ==
		    CURLE_ABORTED_BY_CALLBACK && atomic_load(&h->stopping);
		if (!stopped)
			fill_answer(slot, rc, a);
		curl_multi_remove_handle(h->multi, slot->handle);
		free(slot->request);
		slot->request = NULL;
		slot->busy = false;
		h->in_flight--;
		if (!stopped)
			return (1);
	}
	return (0);
}

/*
 * From any thread: end a wait, and abort every transfer from now on
 * (those libcurl drives again; http_close ends the rest).
 */
void
http_stop(struct http *h)
{
	atomic_store(&h->stopping, true);
	events_wake(h->events);
}

/* GET the health URL: true if it answered 2xx; *health says more. */
bool
http_check_health(struct http *h, struct health *health)
{
	CURLcode	rc;

	memset(health, 0, sizeof *health);
	h->health_error[0] = '\0';
	rc = curl_easy_perform(h->health);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h->health, CURLINFO_RESPONSE_CODE,
		    &health->code);
	else
		health->reason = failure_reason(rc, h->health_error);
	health->refused = rc == CURLE_COULDNT_CONNECT;
	return (health_answer_ok(rc, health->code));
}

/*
 * Does anything accept a connection at the health URL's host and port
 * (with TLS, as the health check will)?
 */
bool
http_listening(struct http *h, int64_t timeout_ms)
{
	CURL	*probe;
	char	 error[CURL_ERROR_SIZE];
	bool	 up;

	if ((probe = easy_handle(h->options, h->options->health_url,
	    timeout_ms, error)) == NULL)
		return (false);
	up = curl_easy_setopt(probe, CURLOPT_CONNECT_ONLY, 1L) == CURLE_OK &&
	    curl_easy_perform(probe) == CURLE_OK;
	curl_easy_cleanup(probe);
	return (up);
}

/* One health check of url on a handle of its own, for --status. */
bool
probe_health(const struct options *o, const char *url, long *code,
    char error[CURL_ERROR_SIZE])
{
	CURL		*h;
	CURLcode	 rc;

	*code = 0;
	if ((h = easy_handle(o, url, o->timeout_ms, error)) == NULL) {
		strlcpy(error, "cannot set up libcurl", CURL_ERROR_SIZE);
		return (false);
	}
	rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
	else if (error[0] == '\0')
		strlcpy(error, curl_easy_strerror(rc), CURL_ERROR_SIZE);
	curl_easy_cleanup(h);
	return (health_answer_ok(rc, *code));
}
