/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * curl-baseline: the replay's baseline. libcurl POSTs count bodies over
 * keep-alive connections, shaped as echopost delivers a record: the same
 * headers and
 * {"pipelines":["bench"],"log_data":<a JSON object of size bytes>}.
 * With -c 1 (the default) one handle sends one at a time; with -c N, N
 * handles on a multi handle keep N in flight, driven the way libcurl's
 * documentation shows (curl_multi_perform, curl_multi_poll). Nothing is
 * read from or written to disk: this is libcurl's part of a replay alone.
 *
 *	curl-baseline [-c connections] [-n count] [-s size] url
 *
 * Prints one JSON object, with its own CPU time; exits 0 only if every
 * POST got a 2xx answer.
 */
#include "config.h"

#include <sys/resource.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "payload.h"

#define TIMEOUT_MS	5000

static size_t
discard_body(char *data, size_t size, size_t count, void *arg)
{
	return (size * count);
}

static CURL *
new_handle(const char *url, struct curl_slist *headers)
{
	CURL	*h;

	if ((h = curl_easy_init()) == NULL)
		return (NULL);
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS) !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body) !=
	    CURLE_OK) {
		curl_easy_cleanup(h);
		return (NULL);
	}
	return (h);
}

/* The body of record seq, or NULL. */
static char *
make_body(unsigned long long seq, size_t size)
{
	char	*payload, *body;

	if ((payload = payload_make(seq, 0, size)) == NULL)
		return (NULL);
	if (asprintf(&body, "{\"pipelines\":[\"" PAYLOAD_PIPELINE "\"],"
	    "\"log_data\":%s}", payload) == -1)
		body = NULL;
	free(payload);
	return (body);
}

/* 1 for a 2xx answer, 0 for any other. */
static int
answered_ok(CURL *h, CURLcode rc)
{
	long	code = 0;

	return (rc == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE,
	    &code) == CURLE_OK && code >= 200 && code <= 299);
}

static int
post_one(CURL *h, unsigned long long seq, size_t size)
{
	char	*body;
	int	 ok = 0;

	if ((body = make_body(seq, size)) == NULL)
		return (0);
	if (curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) == CURLE_OK)
		ok = answered_ok(h, curl_easy_perform(h));
	free(body);
	return (ok);
}

/* One at a time: 2xx answers of count. */
static unsigned long long
post_in_turn(CURL *h, unsigned long long count, size_t size)
{
	unsigned long long	seq, ok = 0;

	for (seq = 0; seq < count; seq++)
		ok += (unsigned long long)post_one(h, seq, size);
	return (ok);
}

/* Start record seq on handle h; -1 if it cannot be. */
static int
start(CURLM *multi, CURL *h, char **body, unsigned long long seq,
    size_t size)
{
	free(*body);
	if ((*body = make_body(seq, size)) == NULL ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDS, *body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PRIVATE, body) != CURLE_OK ||
	    curl_multi_add_handle(multi, h) != CURLM_OK)
		return (-1);
	return (0);
}

/* n in flight on handles[]: 2xx answers of count. */
static unsigned long long
post_in_flight(CURL **handles, size_t n, unsigned long long count,
    size_t size)
{
	CURLM			*multi;
	CURLMsg			*msg;
	char			**bodies;
	unsigned long long	 seq = 0, done = 0, ok = 0;
	size_t			 i;
	int			 running, left;

	if ((multi = curl_multi_init()) == NULL ||
	    (bodies = calloc(n, sizeof *bodies)) == NULL)
		return (0);
	for (i = 0; i < n && seq < count; i++)
		if (start(multi, handles[i], &bodies[i], seq++, size) == -1)
			return (ok);
	while (done < count) {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			char	**body;

			if (msg->msg != CURLMSG_DONE)
				continue;
			done++;
			ok += (unsigned long long)answered_ok(msg->easy_handle,
			    msg->data.result);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&body);
			curl_multi_remove_handle(multi, msg->easy_handle);
			if (seq < count && start(multi, msg->easy_handle, body,
			    seq++, size) == -1)
				return (ok);
		}
		if (done < count && curl_multi_poll(multi, NULL, 0, TIMEOUT_MS,
		    NULL) != CURLM_OK)
			break;
	}
	for (i = 0; i < n; i++)
		free(bodies[i]);
	free(bodies);
	curl_multi_cleanup(multi);
	return (ok);
}

static void
usage(void)
{
	fprintf(stderr, "usage: curl-baseline [-c connections] [-n count] "
	    "[-s size] url\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct curl_slist	*headers = NULL;
	struct rusage		 ru;
	CURL			**handles;
	unsigned long long	 count = 100000, ok;
	size_t			 size = 300, connections = 1, i;
	int64_t			 started;
	double			 seconds;
	int			 ch;

	while ((ch = getopt(argc, argv, "c:n:s:")) != -1) {
		switch (ch) {
		case 'c':
			connections = (size_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		case 's':
			size = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1 || count == 0 || size == 0 ||
	    connections == 0 || connections > 1024)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return (1);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	headers = curl_slist_append(headers, "DATANADHI-API-KEY: "
	    PAYLOAD_API_KEY);
	if (headers == NULL ||
	    (handles = calloc(connections, sizeof *handles)) == NULL)
		return (1);
	for (i = 0; i < connections; i++)
		if ((handles[i] = new_handle(argv[optind], headers)) == NULL)
			return (1);
	started = now_ns();
	ok = connections == 1 ? post_in_turn(handles[0], count, size) :
	    post_in_flight(handles, connections, count, size);
	seconds = (double)(now_ns() - started) / 1e9;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"records\": %llu, \"ok\": %llu, \"seconds\": %.3f, "
	    "\"records_per_s\": %.1f, \"user_s\": %.3f, \"sys_s\": %.3f}\n",
	    count, ok, seconds, seconds > 0 ? ok / seconds : 0,
	    ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	for (i = 0; i < connections; i++)
		curl_easy_cleanup(handles[i]);
	free(handles);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return (ok == count ? 0 : 1);
}
