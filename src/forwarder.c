/*
 * forwarder.c: deliver the spool to the server over one keep-alive
 * connection, in arrival order.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "forwarder.h"
#include "log.h"
#include "record.h"
#include "session.h"
#include "spool.h"

/* Keep this much of a refusal's body for the failure log. */
#define BODY_KEEP		(64 * 1024)
/* Retry-After beyond this is taken as this: the logs must still go. */
#define RETRY_AFTER_MAX_MS	(10 * 60 * 1000)
#define PROGRESS_MS		1000
/* While waiting, closed journals are sealed into GDBM this often. */
#define SETTLE_MS		250
/* While nobody listens at the server's port, it is tried this often. */
#define PROBE_MS		250

#define BAR_MS			200
#define BAR_WIDTH		24

struct progress {
	uint64_t	 sent;
	uint64_t	 failed;
	uint64_t	 sent_at_last_line;
	int64_t		 last_line_ms;
	int64_t		 started_ms;
	int64_t		 last_bar_ms;
};

enum step {
	STEP_DONE,		/* the record left the spool */
	STEP_WAIT,		/* it stays: wait, then send it again */
	STEP_UNREACHABLE	/* it stays: wait, then check health first */
};

struct forwarder {
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;
	atomic_bool		 stopping;
	bool			 listener_closed;
	bool			 wants_drain;
	bool			 done;
	enum forwarder_result	 result;

	struct forwarder_config	 config;
	char			*log_url;
	struct spool		*spool;
	struct session		*session;
	CURL			*post;
	CURL			*health;
	char			 post_error[CURL_ERROR_SIZE];
	char			 health_error[CURL_ERROR_SIZE];
	char			*body;
	size_t			 body_len;
	bool			 headers_ended;	/* the blank line came */
	struct curl_slist	*headers;	/* built for headers_key */
	char			*headers_key;
	unsigned int		 failures;
	bool			 settle_failed;
	bool			 refused;	/* no listener at last check */
	struct progress		 progress;
};

enum delivery
classify_answer(CURLcode rc, long code)
{
	if (rc != CURLE_OK)
		return (DELIVERY_RETRY);
	if (code >= 200 && code <= 299)
		return (DELIVERY_DONE);
	if (code == 408 || code == 429)
		return (DELIVERY_RETRY);
	if (code >= 300 && code <= 500)
		return (DELIVERY_REJECTED);
	return (DELIVERY_RETRY);
}

bool
health_answer_ok(CURLcode rc, long code)
{
	return (rc == CURLE_OK && code >= 200 && code <= 299);
}

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

/* URL + "/log", without a double slash. */
char *
log_url(const char *base)
{
	char	*url;
	size_t	 len;

	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	if (asprintf(&url, "%.*s/log", (int)len, base) == -1)
		return (NULL);
	return (url);
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

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&f->lock);
	while (!stopping(f) &&
	    pthread_cond_timedwait(&f->wake, &f->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->lock);
}

/*
 * Wait for ms, or less if told to stop. Meanwhile the journals the
 * listener has closed are sealed into GDBM and deleted, so that they do
 * not pile up, and a spare is made ready for the next.
 */
static void
pause_ms(struct forwarder *f, int64_t ms)
{
	int64_t	end, now;

	end = clock_monotonic_ms() + ms;
	while (!stopping(f) && (now = clock_monotonic_ms()) < end) {
		if (spool_settle(f->spool) == -1) {
			if (!f->settle_failed)
				log_event(LEVEL_ERROR, "spool_error", "{s:s}",
				    "error", spool_error(f->spool));
			f->settle_failed = true;
		} else
			f->settle_failed = false;
		sleep_ms(f, end - now < SETTLE_MS ? end - now : SETTLE_MS);
	}
}

static size_t
keep_body(char *data, size_t size, size_t count, void *arg)
{
	struct forwarder	*f = arg;
	size_t			 len = size * count, room;

	room = BODY_KEEP - f->body_len;
	if (len < room)
		room = len;
	memcpy(f->body + f->body_len, data, room);
	f->body_len += room;
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
	struct forwarder	*f = arg;
	size_t			 len = size * count;

	if ((len == 2 && line[0] == '\r' && line[1] == '\n') ||
	    (len == 1 && line[0] == '\n'))
		f->headers_ended = true;
	return (len);
}

static size_t
discard_body(char *data, size_t size, size_t count, void *arg)
{
	return (size * count);
}

/* Lets a signal cut short a request that waits on a slow server. */
static int
abort_if_stopping(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	return (stopping(arg) ? 1 : 0);
}

/* The CA certificates to check the server's with, if not libcurl's. */
static CURLcode
set_tls(CURL *h, const struct tls_files *tls)
{
	CURLcode	rc = CURLE_OK;

	if (tls->cacert != NULL)
		rc = curl_easy_setopt(h, CURLOPT_CAINFO, tls->cacert);
	if (rc == CURLE_OK && tls->capath != NULL)
		rc = curl_easy_setopt(h, CURLOPT_CAPATH, tls->capath);
	return (rc);
}

/* Why a transfer failed: libcurl's own words, if it has them. */
static const char *
failure_reason(CURLcode rc, const char *error)
{
	return (error[0] != '\0' ? error : curl_easy_strerror(rc));
}

static CURL *
new_handle(struct forwarder *f, curl_write_callback on_body,
    char error[CURL_ERROR_SIZE])
{
	CURL	*h;

	if ((h = curl_easy_init()) == NULL)
		return (NULL);
	if (curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error) != CURLE_OK ||
	    set_tls(h, &f->config.tls) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
	    (long)f->config.timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, f) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION,
	    abort_if_stopping) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_XFERINFODATA, f) != CURLE_OK) {
		curl_easy_cleanup(h);
		return (NULL);
	}
	return (h);
}

/* One health check on a handle of its own, for --status. */
bool
probe_health(const char *url, const struct tls_files *tls,
    int64_t timeout_ms, long *code, char error[CURL_ERROR_SIZE])
{
	CURL		*h;
	CURLcode	 rc;

	*code = 0;
	strlcpy(error, "out of memory", CURL_ERROR_SIZE);
	if ((h = curl_easy_init()) == NULL)
		return (false);
	error[0] = '\0';
	rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
	if (rc == CURLE_OK)
		rc = set_tls(h, tls);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
	else if (error[0] == '\0')
		strlcpy(error, curl_easy_strerror(rc), CURL_ERROR_SIZE);
	curl_easy_cleanup(h);
	return (health_answer_ok(rc, *code));
}

static int
check_health(struct forwarder *f)
{
	CURLcode	rc;
	long		code = 0;

	rc = curl_easy_perform(f->health);
	f->refused = rc == CURLE_COULDNT_CONNECT;
	if (rc == CURLE_OK)
		curl_easy_getinfo(f->health, CURLINFO_RESPONSE_CODE, &code);
	if (health_answer_ok(rc, code))
		return (0);
	if (rc != CURLE_OK)
		log_event(LEVEL_INFO, "server_down", "{s:s}", "reason",
		    failure_reason(rc, f->health_error));
	else
		log_event(LEVEL_INFO, "server_down", "{s:s, s:i}", "reason",
		    "health check answered", "code", (int)code);
	return (-1);
}

/*
 * The request headers for key. Records nearly always carry the same key,
 * so the list is built again only when the key changes.
 */
static int
use_key(struct forwarder *f, const char *key)
{
	struct curl_slist	*list = NULL, *more;
	char			*key_header, *copy;
	const char		*lines[3];
	size_t			 i;

	if (f->headers_key != NULL && strcmp(f->headers_key, key) == 0)
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
	if (copy == NULL ||
	    curl_easy_setopt(f->post, CURLOPT_HTTPHEADER, list) != CURLE_OK) {
		free(copy);
		curl_slist_free_all(list);
		return (-1);
	}
	curl_slist_free_all(f->headers);
	free(f->headers_key);
	f->headers = list;
	f->headers_key = copy;
	return (0);
}

/*
 * POST one record. The body splices the stored payload in unchanged:
 * {"pipelines": [...], "log_data": <json_data as received>}.
 */
static enum delivery
forward_one(struct forwarder *f, const struct record *r, long *code,
    int64_t *retry_after_ms)
{
	curl_off_t		 retry_after = -1;
	CURLcode		 rc;
	char			*body;

	*code = 0;
	*retry_after_ms = 0;
	f->body_len = 0;
	f->headers_ended = false;
	if (use_key(f, r->api_key_len > 0 ? r->api_key :
	    f->config.api_key) == -1 ||
	    asprintf(&body, "{\"pipelines\":%s,\"log_data\":%s}",
	    r->pipelines, r->payload) == -1)
		return (DELIVERY_RETRY);
	rc = curl_easy_setopt(f->post, CURLOPT_POSTFIELDS, body);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(f->post);
	if (rc == CURLE_OK && !f->headers_ended)
		rc = CURLE_PARTIAL_FILE;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(f->post, CURLINFO_RESPONSE_CODE, code);
		curl_easy_getinfo(f->post, CURLINFO_RETRY_AFTER, &retry_after);
	} else
		log_event(LEVEL_INFO, "delivery_error", "{s:s}", "reason",
		    failure_reason(rc, f->post_error));
	if (retry_after > 0)
		*retry_after_ms = retry_after > RETRY_AFTER_MAX_MS / 1000 ?
		    RETRY_AFTER_MAX_MS : retry_after * 1000;
	curl_easy_setopt(f->post, CURLOPT_POSTFIELDS, NULL);
	free(body);
	return (classify_answer(rc, *code));
}

/* For a person at a terminal; stdout keeps its JSON lines. */
static void
draw_bar(struct forwarder *f, int64_t now, bool last)
{
	struct progress	*p = &f->progress;
	uint64_t	 done, left, total;
	double		 rate;
	char		 bar[BAR_WIDTH + 1];
	int		 filled, eta;

	if (!last && now - p->last_bar_ms < BAR_MS)
		return;
	p->last_bar_ms = now;
	done = p->sent + p->failed;
	left = spool_count(f->spool);
	total = done + left;
	rate = now > p->started_ms ? done * 1000.0 / (now - p->started_ms) :
	    0;
	filled = total > 0 ? (int)(done * BAR_WIDTH / total) : BAR_WIDTH;
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	eta = rate > 0 ? (int)(left / rate) : 0;
	fprintf(stderr, "\r[%s] %llu sent, %llu failed, %llu left, %.0f/s, "
	    "ETA %d:%02d:%02d \033[K%s", bar, (unsigned long long)p->sent,
	    (unsigned long long)p->failed, (unsigned long long)left, rate,
	    eta / 3600, eta / 60 % 60, eta % 60, last ? "\n" : "");
}

static void
report_progress(struct forwarder *f, bool force)
{
	struct progress	*p = &f->progress;
	int64_t		 now, elapsed;

	now = clock_monotonic_ms();
	if (f->config.progress_bar)
		draw_bar(f, now, force);
	elapsed = now - p->last_line_ms;
	if (!force && elapsed < PROGRESS_MS)
		return;
	if (elapsed <= 0)
		elapsed = 1;
	log_event(LEVEL_INFO, "replay_progress", "{s:I, s:I, s:I, s:f}",
	    "sent", (json_int_t)p->sent, "failed", (json_int_t)p->failed,
	    "remaining", (json_int_t)spool_count(f->spool),
	    "rate", (double)(p->sent - p->sent_at_last_line) * 1000 / elapsed);
	p->sent_at_last_line = p->sent;
	p->last_line_ms = now;
}

/*
 * Remove a record whose fate is written down (status 0); if that failed, or
 * the removal fails, keep it and wait before the next try. The spool makes
 * removals durable in groups: a crash repeats at most a group.
 */
static enum step
leave_spool(struct forwarder *f, uint64_t seq, size_t size, int status,
    int64_t *wait_ms)
{
	if (status == 0 && spool_remove(f->spool, seq, size) == 0)
		return (STEP_DONE);
	if (status == 0)
		log_event(LEVEL_ERROR, "spool_error", "{s:s}", "error",
		    spool_error(f->spool));
	*wait_ms = backoff_ms(f->config.health_interval_ms, f->failures++);
	return (STEP_WAIT);
}

static int
quarantine(struct forwarder *f, uint64_t seq, const void *data, size_t size,
    enum record_status why)
{
	log_event(LEVEL_ERROR, "record_quarantined", "{s:I, s:s}", "seq",
	    (json_int_t)seq, "reason", record_status_string(why));
	if (session_quarantine(f->session, seq, data, size,
	    record_status_string(why)) == -1) {
		log_event(LEVEL_ERROR, "quarantine_error", "{s:s}", "error",
		    strerror(errno));
		return (-1);
	}
	return (0);
}

/* Does anything accept a connection at the health URL's host and port? */
static bool
server_listening(struct forwarder *f)
{
	CURL	*probe;
	bool	 up;

	if ((probe = curl_easy_init()) == NULL)
		return (false);
	up = curl_easy_setopt(probe, CURLOPT_URL, f->config.health_url) ==
	    CURLE_OK && curl_easy_setopt(probe, CURLOPT_CONNECT_ONLY, 1L) ==
	    CURLE_OK && curl_easy_setopt(probe, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)PROBE_MS) == CURLE_OK && curl_easy_setopt(probe,
	    CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_perform(probe) == CURLE_OK;
	curl_easy_cleanup(probe);
	return (up);
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

	if (!f->refused) {
		pause_ms(f, ms);
		return;
	}
	while (!stopping(f) && (now = clock_monotonic_ms()) < end) {
		pause_ms(f, end - now < PROBE_MS ? end - now : PROBE_MS);
		if (server_listening(f)) {
			log_event(LEVEL_INFO, "server_listening", "{}");
			return;
		}
	}
}

/* Only while logs are accepted: the lock tells the SDK's peers so. */
static void
note_server_down(struct forwarder *f)
{
	bool	accepting;

	pthread_mutex_lock(&f->lock);
	accepting = !f->listener_closed;
	pthread_mutex_unlock(&f->lock);
	if (accepting && session_set_server_down(f->session, true) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
}

static void
note_server_up(struct forwarder *f)
{
	f->failures = 0;
	if (session_set_server_down(f->session, false) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
}

/*
 * Deliver the oldest record: delivered, rejected or quarantined, it leaves
 * the spool; otherwise *wait_ms says how long to wait before the next try.
 */
static enum step
deliver(struct forwarder *f, uint64_t seq, void *data, size_t size,
    int64_t *wait_ms)
{
	struct record		 r;
	enum record_status	 status;
	enum delivery		 outcome;
	int64_t			 retry_after;
	long			 code;

	if ((status = record_decode(data, size, &r)) != RECORD_OK)
		return (leave_spool(f, seq, size,
		    quarantine(f, seq, data, size, status), wait_ms));
	outcome = forward_one(f, &r, &code, &retry_after);
	switch (outcome) {
	case DELIVERY_DONE:
		note_server_up(f);
		f->progress.sent++;
		log_event(LEVEL_DEBUG, "record_delivered", "{s:I, s:i}",
		    "seq", (json_int_t)seq, "code", (int)code);
		if (session_delivered(f->session, &r, code) == -1)
			log_event(LEVEL_WARN, "success_log_error", "{s:s}",
			    "error", strerror(errno));
		return (leave_spool(f, seq, size, 0, wait_ms));
	case DELIVERY_REJECTED:
		f->progress.failed++;
		log_event(LEVEL_WARN, "record_rejected", "{s:I, s:i}", "seq",
		    (json_int_t)seq, "code", (int)code);
		if (session_rejected(f->session, &r, code, f->body,
		    f->body_len) == -1) {
			log_event(LEVEL_ERROR, "failure_log_error", "{s:s}",
			    "error", strerror(errno));
			return (leave_spool(f, seq, size, -1, wait_ms));
		}
		return (leave_spool(f, seq, size, 0, wait_ms));
	case DELIVERY_RETRY:
		break;
	}
	note_server_down(f);
	*wait_ms = backoff_ms(f->config.health_interval_ms, f->failures++);
	if (retry_after > *wait_ms)
		*wait_ms = retry_after;
	log_event(LEVEL_INFO, "record_retry", "{s:I, s:i, s:I}", "seq",
	    (json_int_t)seq, "code", (int)code, "retry_in_ms",
	    (json_int_t)*wait_ms);
	return (code == 0 ? STEP_UNREACHABLE : STEP_WAIT);
}

/* Spool empty, server healthy: have the listener closed, then drain. */
static bool
ready_to_finish(struct forwarder *f)
{
	bool	closed;

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

static void
replay(struct forwarder *f)
{
	void		*data;
	size_t		 size;
	uint64_t	 seq;
	int64_t		 wait_ms;
	enum step	 step;
	bool		 healthy = false;
	int		 found;

	while (!stopping(f)) {
		if (!healthy) {
			if (check_health(f) == -1) {
				note_server_down(f);
				wait_for_server(f, backoff_ms(
				    f->config.health_interval_ms,
				    f->failures++));
				continue;
			}
			healthy = true;
			note_server_up(f);
			f->progress.started_ms = clock_monotonic_ms();
			log_event(LEVEL_INFO, "server_healthy", "{s:I}",
			    "spooled", (json_int_t)spool_count(f->spool));
		}
		found = spool_first(f->spool, &seq, &data, &size);
		if (found == 0) {
			if (spool_sync(f->spool) == -1)
				log_event(LEVEL_ERROR, "spool_error", "{s:s}",
				    "error", spool_error(f->spool));
			if (ready_to_finish(f)) {
				f->result = FORWARDER_DRAINED;
				break;
			}
			continue;
		}
		if (found == -1) {
			log_event(LEVEL_ERROR, "spool_error", "{s:s}", "error",
			    spool_error(f->spool));
			pause_ms(f, backoff_ms(f->config.health_interval_ms,
			    f->failures++));
			continue;
		}
		wait_ms = 0;
		step = deliver(f, seq, data, size, &wait_ms);
		free(data);
		report_progress(f, false);
		if (step == STEP_UNREACHABLE)
			healthy = false;
		if (step != STEP_DONE)
			pause_ms(f, wait_ms);
	}
	if (f->progress.sent + f->progress.failed > 0)
		report_progress(f, true);
}

static void *
forwarder_main(void *arg)
{
	struct forwarder	*f = arg;

	replay(f);
	pthread_mutex_lock(&f->lock);
	f->done = true;
	pthread_mutex_unlock(&f->lock);
	return (NULL);
}

static int
setup(struct forwarder *f)
{
	pthread_condattr_t	attr;

	if (pthread_condattr_init(&attr) != 0)
		return (-1);
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&f->wake, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		return (-1);
	}
	pthread_condattr_destroy(&attr);
	if (pthread_mutex_init(&f->lock, NULL) != 0)
		return (-1);
	if ((f->body = malloc(BODY_KEEP)) == NULL ||
	    (f->log_url = log_url(f->config.health_url)) == NULL ||
	    (f->post = new_handle(f, keep_body, f->post_error)) == NULL ||
	    (f->health = new_handle(f, discard_body, f->health_error)) ==
	    NULL)
		return (-1);
	if (curl_easy_setopt(f->post, CURLOPT_URL, f->log_url) != CURLE_OK ||
	    curl_easy_setopt(f->post, CURLOPT_HEADERFUNCTION,
	    note_header) != CURLE_OK ||
	    curl_easy_setopt(f->post, CURLOPT_HEADERDATA, f) != CURLE_OK ||
	    curl_easy_setopt(f->health, CURLOPT_URL,
	    f->config.health_url) != CURLE_OK)
		return (-1);
	f->progress.last_line_ms = clock_monotonic_ms();
	return (0);
}

static void
teardown(struct forwarder *f)
{
	curl_easy_cleanup(f->post);
	curl_easy_cleanup(f->health);
	curl_slist_free_all(f->headers);
	free(f->headers_key);
	free(f->log_url);
	free(f->body);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int
forwarder_start(struct forwarder **fp, const struct forwarder_config *config,
    struct spool *spool, struct session *session)
{
	struct forwarder	*f;

	*fp = NULL;
	if ((f = calloc(1, sizeof *f)) == NULL)
		return (-1);
	f->config = *config;
	f->spool = spool;
	f->session = session;
	f->result = FORWARDER_STOPPED;
	f->listener_closed = config->replay_only;
	atomic_init(&f->stopping, false);
	if (setup(f) == -1 || pthread_create(&f->thread, NULL,
	    forwarder_main, f) != 0) {
		teardown(f);
		return (-1);
	}
	*fp = f;
	return (0);
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

bool
forwarder_done(struct forwarder *f)
{
	bool	done;

	pthread_mutex_lock(&f->lock);
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
}

enum forwarder_result
forwarder_join(struct forwarder *f, uint64_t *rejected)
{
	enum forwarder_result	result;

	*rejected = f->progress.failed;
	if (pthread_join(f->thread, NULL) != 0)
		result = FORWARDER_FAILED;
	else
		result = f->result;
	teardown(f);
	return (result);
}
