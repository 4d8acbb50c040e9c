/*
 * curl-baseline: the replay's baseline. One libcurl handle POSTs count
 * bodies, one at a time over one keep-alive connection, shaped as echopost
 * delivers a record: the same headers and
 * {"pipelines":["bench"],"log_data":<a JSON object of size bytes>}.
 * Nothing is read from or written to disk: this is the network's part of
 * a replay alone.
 *
 *	curl-baseline [-n count] [-s size] url
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

/* 1 for a 2xx answer, 0 for any other. */
static int
post_one(CURL *h, unsigned long long seq, size_t size)
{
	char	*payload, *body;
	long	 code = 0;
	int	 ok = 0;

	if ((payload = payload_make(seq, 0, size)) == NULL)
		return (0);
	if (asprintf(&body, "{\"pipelines\":[\"" PAYLOAD_PIPELINE "\"],"
	    "\"log_data\":%s}", payload) != -1) {
		if (curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
		    curl_easy_perform(h) == CURLE_OK &&
		    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) ==
		    CURLE_OK)
			ok = code >= 200 && code <= 299;
		free(body);
	}
	free(payload);
	return (ok);
}

static void
usage(void)
{
	fprintf(stderr, "usage: curl-baseline [-n count] [-s size] url\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct curl_slist	*headers = NULL;
	struct rusage		 ru;
	CURL			*h;
	unsigned long long	 count = 100000, seq, ok = 0;
	size_t			 size = 300;
	int64_t			 started;
	double			 seconds;
	int			 ch;

	while ((ch = getopt(argc, argv, "n:s:")) != -1) {
		switch (ch) {
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
	if (argc - optind != 1 || count == 0 || size == 0)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return (1);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	headers = curl_slist_append(headers, "DATANADHI-API-KEY: "
	    PAYLOAD_API_KEY);
	if (headers == NULL || (h = new_handle(argv[optind], headers)) == NULL)
		return (1);
	started = now_ns();
	for (seq = 0; seq < count; seq++)
		ok += (unsigned long long)post_one(h, seq, size);
	seconds = (double)(now_ns() - started) / 1e9;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"records\": %llu, \"ok\": %llu, \"seconds\": %.3f, "
	    "\"records_per_s\": %.1f, \"user_s\": %.3f, \"sys_s\": %.3f}\n",
	    count, ok, seconds, seconds > 0 ? ok / seconds : 0,
	    ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return (ok == count ? 0 : 1);
}
