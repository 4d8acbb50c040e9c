/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * echopost-send: send logs to a running echopost the way the SDK does, one
 * new channel per log, and report what was acknowledged.
 *
 *	echopost-send [-t threads] [-n count] [-k api-key] [-p pipeline]
 *	    [-m message] socket
 *
 * Each log is {"seq": N, "thread": T, "message": MESSAGE}. Exits 0 when
 * every log was answered success: true.
 */
#include "config.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <jansson.h>

#include "grpc-call.h"

struct sender {
	pthread_t	 thread;
	int		 id;
	long		 count;
	const char	*target;
	const char	*api_key;
	const char	*pipeline;
	const char	*message;
	long		 counts[CALL_RESULTS];
};

static grpc_byte_buffer *
pack_request(const struct sender *s, long seq)
{
	grpc_byte_buffer	*buffer;
	json_t			*log;
	char			*json;

	log = json_pack("{s:I, s:i, s:s}", "seq", (json_int_t)seq, "thread",
	    s->id, "message", s->message);
	json = log != NULL ? json_dumps(log, JSON_COMPACT) : NULL;
	json_decref(log);
	if (json == NULL)
		return (NULL);
	buffer = call_pack(json, s->pipeline, s->api_key);
	free(json);
	return (buffer);
}

/* A new channel, and so a new connection, for every log. */
static enum call_result
send_one(const struct sender *s, long seq)
{
	grpc_completion_queue	*queue;
	grpc_channel		*channel;
	grpc_byte_buffer	*request;
	enum call_result	 result;

	if ((request = pack_request(s, seq)) == NULL)
		return (CALL_FAILED);
	queue = grpc_completion_queue_create_for_pluck(NULL);
	channel = call_channel(s->target);
	result = call_send(channel, queue, request, 10000);
	grpc_byte_buffer_destroy(request);
	grpc_channel_destroy(channel);
	grpc_completion_queue_shutdown(queue);
	grpc_completion_queue_destroy(queue);
	return (result);
}

static void *
sender_main(void *arg)
{
	struct sender	*s = arg;
	long		 seq;

	for (seq = 0; seq < s->count; seq++)
		s->counts[send_one(s, seq)]++;
	return (NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: echopost-send [-t threads] [-n count] "
	    "[-k api-key] [-p pipeline] [-m message] socket\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct sender	*senders, base;
	long		 counts[CALL_RESULTS] = { 0 }, threads = 1;
	char		*target;
	int		 c, i;

	memset(&base, 0, sizeof base);
	base.count = 10;
	base.api_key = "";
	base.pipeline = "demo";
	base.message = "hello from echopost-send";
	while ((c = getopt(argc, argv, "t:n:k:p:m:")) != -1) {
		switch (c) {
		case 't':
			threads = strtol(optarg, NULL, 10);
			break;
		case 'n':
			base.count = strtol(optarg, NULL, 10);
			break;
		case 'k':
			base.api_key = optarg;
			break;
		case 'p':
			base.pipeline = optarg;
			break;
		case 'm':
			base.message = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1 || threads < 1 || threads > 1024 ||
	    base.count < 0)
		usage();
	if (asprintf(&target, "unix:%s", argv[optind]) == -1 ||
	    (senders = calloc((size_t)threads, sizeof *senders)) == NULL)
		return (1);
	base.target = target;
	grpc_init();
	for (i = 0; i < threads; i++) {
		senders[i] = base;
		senders[i].id = i;
		if (pthread_create(&senders[i].thread, NULL, sender_main,
		    &senders[i]) != 0)
			return (1);
	}
	for (i = 0; i < threads; i++) {
		pthread_join(senders[i].thread, NULL);
		for (c = 0; c < CALL_RESULTS; c++)
			counts[c] += senders[i].counts[c];
	}
	grpc_shutdown();
	printf("sent %ld, stored %ld, refused %ld, failed %ld\n",
	    counts[CALL_STORED] + counts[CALL_REFUSED] + counts[CALL_FAILED],
	    counts[CALL_STORED], counts[CALL_REFUSED], counts[CALL_FAILED]);
	free(senders);
	free(target);
	return (counts[CALL_STORED] == base.count * threads ? 0 : 1);
}
