/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_window.c: refusals that may be the endpoint's. What the records
 * after a suspect say of it (the verdicts of window_judge), and how an
 * answer makes a record a suspect, keeps it while a refusal stands, or
 * ends the refusal (window_send and window_collect, against a server in
 * a thread of the test).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "forwarder_int.h"
#include "http.h"
#include "session.h"
#include "spool.h"
#include "util.h"
#include "unit.h"

#define PAYLOAD		"{\"a\":1}"
#define PIPELINES	"[\"p\"]"
#define BODY		"no such endpoint"

static char		*dir;
static int		 dir_fd;
static struct options	 options;
static struct forwarder	 f;

/* The server: every request gets answer_status and BODY. */
static int		 server_fd = -1;
static pthread_t	 server_thread;
static atomic_int	 answer_status;

static void
setup(void)
{
	char	cause[CAUSE_SIZE];

	dir = unit_tempdir();
	ck_assert_ptr_nonnull(dir);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ne(dir_fd, -1);
	memset(&f, 0, sizeof f);
	f.session = session_open(dir_fd, dir, cause);
	ck_assert_msg(f.session != NULL, "session: %s", cause);
	f.window_size = 2 * ENDPOINT_RUN;
	f.window = calloc(f.window_size, sizeof *f.window);
	ck_assert_ptr_nonnull(f.window);
	memset(&options, 0, sizeof options);
	options.health_interval_ms = 100;
	options.timeout_ms = 10000;
	options.concurrency = 1;
	options.api_key = "KEY";
	f.options = &options;
	f.shown_delivery_url = "http://server/log";
	concurrency_init(&f.concurrency, 1);
}

static void
teardown(void)
{
	size_t	i;

	if (f.http != NULL)
		http_close(f.http);
	if (server_fd != -1) {
		ck_assert_int_eq(shutdown(server_fd, SHUT_RDWR), 0);
		ck_assert_int_eq(pthread_join(server_thread, NULL), 0);
		close(server_fd);
		server_fd = -1;
		curl_global_cleanup();
	}
	if (f.spool != NULL)
		ck_assert_int_eq(spool_close(f.spool, 1), 0);
	for (i = 0; i < f.window_count; i++)
		entry_free(f.window[i]);
	free(f.window);
	session_close(f.session);
	close(dir_fd);
	unit_rmtree(dir);
	free(dir);
}

/* A record at the window's end, in state with code as its last answer. */
static struct entry *
add(enum entry_state state, long code)
{
	struct entry	*e;

	ck_assert_uint_lt(f.window_count, f.window_size);
	e = calloc(1, sizeof *e);
	ck_assert_ptr_nonnull(e);
	e->seq = f.window_count;
	e->state = state;
	e->code = code;
	e->decoded = RECORD_OK;
	e->record.pipelines = PIPELINES;
	e->record.pipelines_len = strlen(PIPELINES);
	e->record.payload = PAYLOAD;
	e->record.payload_len = strlen(PAYLOAD);
	if (state == ENTRY_SUSPECT) {
		e->body = strdup(BODY);
		ck_assert_ptr_nonnull(e->body);
		e->body_len = strlen(BODY);
	}
	f.window[f.window_count++] = e;
	return (e);
}

static void
add_suspects(int count, long code)
{
	while (count-- > 0)
		add(ENTRY_SUSPECT, code);
}

/* The lines of file name in this run's session directory. */
static int
session_lines(const char *name)
{
	char	 path[PATH_MAX];
	FILE	*fp;
	int	 c, lines = 0;

	snprintf(path, sizeof path, "%s/%s", session_path(f.session), name);
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "no %s", path);
	while ((c = getc(fp)) != EOF)
		lines += c == '\n';
	fclose(fp);
	return (lines);
}

static bool
refused_file(void)
{
	struct stat	sb;

	return (fstatat(dir_fd, REFUSED_NAME, &sb, 0) == 0);
}

static void
expect_states(size_t from, size_t to, enum entry_state state)
{
	for (; from < to; from++)
		ck_assert_msg(f.window[from]->state == state,
		    "record %zu: state %d, not %d", from,
		    (int)f.window[from]->state, (int)state);
}

/* Neither verdict yet: everything stays as it was. */
static void
expect_open(void)
{
	ck_assert_int_eq(f.refused_code, 0);
	ck_assert_uint_eq(f.progress.failed, 0);
	ck_assert_int_eq(session_lines(FAILURE_LOG_NAME), 0);
	ck_assert(!refused_file());
}

/* The endpoint's: its suspects are kept, to send again, and it is said. */
static void
expect_endpoint(long code, size_t suspects)
{
	ck_assert_int_eq(f.refused_code, code);
	expect_states(0, suspects, ENTRY_QUEUED);
	ck_assert_uint_eq(f.progress.failed, 0);
	ck_assert_int_eq(session_lines(FAILURE_LOG_NAME), 0);
	ck_assert(refused_file());
	ck_assert_int_gt(f.paused_until_ms, clock_monotonic_ms());
}

START_TEST(open_while_the_records_after_have_not_told)
{
	add(ENTRY_SUSPECT, 404);
	add(ENTRY_SENDING, 0);
	add(ENTRY_SETTLED, 200);
	window_judge(&f);
	expect_states(0, 1, ENTRY_SUSPECT);
	expect_open();
}
END_TEST

/* More may come from the spool: a refusal at the window's end waits. */
START_TEST(open_at_the_end_while_more_may_come)
{
	add_suspects(ENDPOINT_RUN - 1, 404);
	window_judge(&f);
	expect_states(0, ENDPOINT_RUN - 1, ENTRY_SUSPECT);
	expect_open();
}
END_TEST

START_TEST(open_one_short_of_the_run)
{
	add_suspects(ENDPOINT_RUN - 1, 404);
	add(ENTRY_QUEUED, 0);
	f.stored_all = true;
	window_judge(&f);
	expect_states(0, ENDPOINT_RUN - 1, ENTRY_SUSPECT);
	expect_open();
}
END_TEST

/* One after it delivered: the refusal was the record's own. */
START_TEST(record_when_one_after_is_delivered)
{
	add(ENTRY_SUSPECT, 404);
	add(ENTRY_SETTLED, 200);
	window_judge(&f);
	expect_states(0, 1, ENTRY_SETTLED);
	ck_assert_uint_eq(f.progress.failed, 1);
	ck_assert_int_eq(session_lines(FAILURE_LOG_NAME), 1);
	ck_assert_int_eq(f.refused_code, 0);
	ck_assert(!refused_file());
}
END_TEST

/*
 * One after it refused for good, or refused with another code: the
 * record's own. The last suspect has no record after it yet: open.
 */
START_TEST(record_when_one_after_is_answered_otherwise)
{
	add(ENTRY_SUSPECT, 404);
	add(ENTRY_SETTLED, 400);
	add(ENTRY_SUSPECT, 404);
	add(ENTRY_SUSPECT, 401);
	window_judge(&f);
	expect_states(0, 1, ENTRY_SETTLED);
	expect_states(2, 3, ENTRY_SETTLED);
	expect_states(3, 4, ENTRY_SUSPECT);
	ck_assert_uint_eq(f.progress.failed, 2);
	ck_assert_int_eq(session_lines(FAILURE_LOG_NAME), 2);
	ck_assert_int_eq(f.refused_code, 0);
}
END_TEST

START_TEST(endpoint_after_a_run_of_one_code)
{
	add_suspects(ENDPOINT_RUN, 404);
	add(ENTRY_SETTLED, 200);
	window_judge(&f);
	expect_endpoint(404, ENDPOINT_RUN);
}
END_TEST

/* Fewer than the run, but all there is, refused alike. */
START_TEST(endpoint_when_all_there_is_is_refused_alike)
{
	add_suspects(3, 401);
	f.stored_all = true;
	window_judge(&f);
	expect_endpoint(401, 3);
}
END_TEST

/* Records settled unsent (quarantined, given up) tell nothing. */
START_TEST(records_settled_unsent_do_not_break_a_run)
{
	int	i;

	for (i = 0; i < ENDPOINT_RUN; i++) {
		add(ENTRY_SUSPECT, 410);
		add(ENTRY_SETTLED, 0);
	}
	window_judge(&f);
	ck_assert_int_eq(f.refused_code, 410);
	for (i = 0; i < ENDPOINT_RUN; i++)
		expect_states(2 * i, 2 * i + 1, ENTRY_QUEUED);
	ck_assert_int_eq(session_lines(FAILURE_LOG_NAME), 0);
}
END_TEST

/*
 * Read a request: its headers, and as many bytes after them as
 * Content-Length says.
 */
static bool
read_request(int fd)
{
	char	 buf[16384], *end = NULL, *length;
	size_t	 have = 0, need = sizeof buf;
	ssize_t	 n;

	while (have < need) {
		if (have == sizeof buf - 1 ||
		    (n = read(fd, buf + have, sizeof buf - 1 - have)) <= 0)
			return (false);
		have += (size_t)n;
		buf[have] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			need = (size_t)(end + 4 - buf);
			length = strstr(buf, "\r\nContent-Length:");
			if (length != NULL && length < end)
				need += strtoul(length + 17, NULL, 10);
		}
	}
	return (true);
}

/* One request a connection, each answered answer_status and BODY. */
static void *
serve(void *arg)
{
	char	answer[256];
	int	fd, len;

	(void)arg;
	while ((fd = accept(server_fd, NULL, NULL)) != -1) {
		if (read_request(fd)) {
			len = snprintf(answer, sizeof answer, "HTTP/1.1 %d "
			    "Answer\r\nContent-Length: %zu\r\nConnection: "
			    "close\r\n\r\n%s", atomic_load(&answer_status),
			    strlen(BODY), BODY);
			if (write(fd, answer, (size_t)len) != len)
				fprintf(stderr, "server: write failed\n");
		}
		close(fd);
	}
	return (NULL);
}

/* The server, the client to it, and a spool for window_send to ask. */
static void
connect_server(int status)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof sin;
	char			 url[64], path[PATH_MAX], cause[CAUSE_SIZE];

	atomic_store(&answer_status, status);
	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	server_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(server_fd, -1);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(server_fd, (struct sockaddr *)&sin, len), 0);
	ck_assert_int_eq(getsockname(server_fd, (struct sockaddr *)&sin,
	    &len), 0);
	ck_assert_int_eq(listen(server_fd, 8), 0);
	ck_assert_int_eq(pthread_create(&server_thread, NULL, serve, NULL),
	    0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sin.sin_port));
	options.health_url = url;
	f.http = http_open(&options, cause);
	ck_assert_msg(f.http != NULL, "http: %s", cause);
	snprintf(path, sizeof path, "%s/test.spool", dir);
	f.spool = spool_open(dir_fd, path, 0, 0, cause);
	ck_assert_msg(f.spool != NULL, "spool: %s", cause);
}

/* Send what is queued and take its answer. */
static void
exchange(void)
{
	int	tries;

	window_send(&f);
	ck_assert_uint_eq(http_in_flight(f.http), 1);
	for (tries = 0; tries < 1000 && http_in_flight(f.http) > 0; tries++)
		window_collect(&f, 10);
	ck_assert_uint_eq(http_in_flight(f.http), 0);
}

/* An answer that may be the endpoint's: a suspect, its answer kept. */
START_TEST(refused_answer_makes_a_suspect)
{
	struct entry	*e;

	connect_server(404);
	e = add(ENTRY_QUEUED, 0);
	exchange();
	ck_assert_int_eq(e->state, ENTRY_SUSPECT);
	ck_assert_int_eq(e->code, 404);
	ck_assert_uint_eq(e->body_len, strlen(BODY));
	ck_assert(memcmp(e->body, BODY, e->body_len) == 0);
	ck_assert_int_eq(f.paused_until_ms, 0);
	expect_open();
}
END_TEST

/* A refusal with another code than the one that stands: a suspect too. */
START_TEST(another_code_than_the_refusals_makes_a_suspect)
{
	struct entry	*e;

	connect_server(404);
	f.refused_code = 401;
	e = add(ENTRY_QUEUED, 0);
	exchange();
	ck_assert_int_eq(e->state, ENTRY_SUSPECT);
	ck_assert_int_eq(f.refused_code, 401);
}
END_TEST

/* The endpoint still refuses: the record is kept, and sending waits. */
START_TEST(a_standing_refusal_keeps_the_record)
{
	struct entry	*e;

	connect_server(404);
	f.refused_code = 404;
	e = add(ENTRY_QUEUED, 0);
	exchange();
	ck_assert_int_eq(e->state, ENTRY_QUEUED);
	ck_assert_int_gt(f.paused_until_ms, clock_monotonic_ms());
	ck_assert_int_eq(f.refused_code, 404);
	ck_assert_int_eq(session_lines(FAILURE_LOG_NAME), 0);
}
END_TEST

/* A delivery ends a refusal: the state and DIR/echopost.refused go. */
START_TEST(a_delivery_ends_the_refusal)
{
	struct entry	*e;

	connect_server(200);
	f.refused_code = 404;
	ck_assert_int_eq(session_set_refused(f.session, 404,
	    f.shown_delivery_url), 0);
	e = add(ENTRY_QUEUED, 0);
	exchange();
	ck_assert_int_eq(e->state, ENTRY_SETTLED);
	ck_assert_uint_eq(f.progress.sent, 1);
	ck_assert_int_eq(f.refused_code, 0);
	ck_assert(!refused_file());
}
END_TEST

Suite *
window_suite(void)
{
	Suite	*s = suite_create("window");
	TCase	*judged = tcase_create("verdicts");
	TCase	*answered = tcase_create("answers");

	tcase_add_checked_fixture(judged, setup, teardown);
	tcase_add_test(judged, open_while_the_records_after_have_not_told);
	tcase_add_test(judged, open_at_the_end_while_more_may_come);
	tcase_add_test(judged, open_one_short_of_the_run);
	tcase_add_test(judged, record_when_one_after_is_delivered);
	tcase_add_test(judged, record_when_one_after_is_answered_otherwise);
	tcase_add_test(judged, endpoint_after_a_run_of_one_code);
	tcase_add_test(judged, endpoint_when_all_there_is_is_refused_alike);
	tcase_add_test(judged, records_settled_unsent_do_not_break_a_run);
	suite_add_tcase(s, judged);
	tcase_add_checked_fixture(answered, setup, teardown);
	tcase_add_test(answered, refused_answer_makes_a_suspect);
	tcase_add_test(answered, another_code_than_the_refusals_makes_a_suspect);
	tcase_add_test(answered, a_standing_refusal_keeps_the_record);
	tcase_add_test(answered, a_delivery_ends_the_refusal);
	suite_add_tcase(s, answered);
	return (s);
}
