/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * loadgen: SendLog load on a socket from callers that each keep one call
 * in flight, and what it got: calls/s and acknowledgement latency.
 *
 *	loadgen [-c callers] [-d seconds | -n count] [-m persistent | new]
 *	    [-s size] [-t threads] [-w warmup] socket
 *
 * "persistent" keeps one channel (one connection) per caller; "new" opens
 * a channel for every call and closes it after, as the SDK does. The
 * callers are shared out among threads, each with a completion queue of
 * its own on which all its callers' calls end: a thread per caller would
 * measure the scheduler, not the server. By default there is one thread
 * for every two CPUs, so that the server under test keeps the others. With -d,
 * calls run for warmup + seconds and only those that finish inside the
 * last seconds count; with -n, exactly count calls are made in all (the
 * spool preload) and every one counts. The result is one JSON object on
 * stdout ("made" counts the calls of warm-up and tail too, for the
 * server's CPU per call); the exit status is 0 only if every counted call
 * was stored.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>

#include "call.h"
#include "payload.h"

#define CALL_DEADLINE_MS	10000

struct load {
	char		*target;
	bool		 persistent;
	size_t		 size;
	uint64_t	 per_caller;	/* -n: calls for each caller */
	uint64_t	 extra;		/* -n: callers below it make one more */
	int64_t		 measure_ns;	/* -d: count calls ending after this */
	int64_t		 end_ns;	/* -d: and before this */
};

/* One caller: one channel at a time, one call on it at a time. */
struct caller {
	int			 id;
	struct worker		*worker;
	grpc_channel		*kept;		/* persistent */
	grpc_channel		*channel;	/* of the call in flight */
	grpc_byte_buffer	*request;
	struct call_pending	 pending;
	int64_t			 started;
	uint64_t		 seq;
};

/* A thread and the callers whose calls end on its queue. */
struct worker {
	pthread_t		 thread;
	const struct load	*load;
	grpc_completion_queue	*queue;
	struct caller		*callers;
	int			 count_callers;
	int64_t			*latencies;
	size_t			 count;
	size_t			 room;
	uint64_t		 counts[CALL_RESULTS];
	uint64_t		 made;		/* counted or not */
};

static int
keep_latency(struct worker *w, int64_t ns)
{
	int64_t	*more;
	size_t	 room;

	if (w->count == w->room) {
		room = w->room > 0 ? w->room * 2 : 4096;
		if ((more = realloc(w->latencies, room * sizeof *more)) ==
		    NULL)
			return (-1);
		w->latencies = more;
		w->room = room;
	}
	w->latencies[w->count++] = ns;
	return (0);
}

static bool
more_calls(const struct caller *c, int64_t now)
{
	const struct load	*load = c->worker->load;

	if (load->end_ns == 0)
		return (c->seq < load->per_caller +
		    ((uint64_t)c->id < load->extra ? 1 : 0));
	return (now < load->end_ns);
}

/* Count a call that ended at end with result. */
static void
account(struct caller *c, enum call_result result, int64_t end)
{
	struct worker		*w = c->worker;
	const struct load	*load = w->load;

	w->made++;
	/* In a timed run, warm-up calls and late ones do not count. */
	if (load->end_ns != 0 && (end < load->measure_ns ||
	    end > load->end_ns))
		return;
	if (result == CALL_STORED &&
	    keep_latency(w, end - c->started) == -1)
		result = CALL_FAILED;
	w->counts[result]++;
}

static void
end_call(struct caller *c)
{
	if (c->kept == NULL && c->channel != NULL)
		grpc_channel_destroy(c->channel);
	c->channel = NULL;
	if (c->request != NULL)
		grpc_byte_buffer_destroy(c->request);
	c->request = NULL;
}

/* Start the caller's next call; false when it has none to make. */
static bool
start_call(struct caller *c)
{
	const struct load	*load = c->worker->load;

	while (more_calls(c, now_ns())) {
		c->started = now_ns();
		c->channel = c->kept != NULL ? c->kept :
		    call_channel(load->target);
		c->request = call_request(c->seq++, c->id, load->size);
		if (c->request != NULL && call_start(&c->pending, c->channel,
		    c->worker->queue, c->request, CALL_DEADLINE_MS, c) == 0)
			return (true);
		if (c->request != NULL)
			call_finish(&c->pending, 0);
		end_call(c);
		account(c, CALL_FAILED, now_ns());
	}
	return (false);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct caller	*c;
	grpc_event	 event;
	int		 i, active = 0;

	for (i = 0; i < w->count_callers; i++) {
		c = &w->callers[i];
		if (w->load->persistent)
			c->kept = call_channel(w->load->target);
		if (start_call(c))
			active++;
	}
	while (active > 0) {
		event = grpc_completion_queue_next(w->queue,
		    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (event.type != GRPC_OP_COMPLETE)
			break;
		c = event.tag;
		account(c, call_finish(&c->pending, event.success), now_ns());
		end_call(c);
		if (!start_call(c))
			active--;
	}
	for (i = 0; i < w->count_callers; i++)
		if (w->callers[i].kept != NULL)
			grpc_channel_destroy(w->callers[i].kept);
	grpc_completion_queue_shutdown(w->queue);
	while (grpc_completion_queue_next(w->queue,
	    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(w->queue);
	return (NULL);
}

static int
compare_ns(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

/* The smallest latency that at least fraction of the calls did not beat. */
static double
percentile_us(const int64_t *sorted, size_t n, double fraction)
{
	size_t	i;

	if (n == 0)
		return (0);
	i = (size_t)(fraction * (double)n + 0.999999);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return ((double)sorted[i] / 1000.0);
}

static int
report(struct worker *workers, int threads, int callers,
    const struct load *load, double seconds)
{
	int64_t		*all;
	uint64_t	 counts[CALL_RESULTS] = { 0 }, made = 0;
	size_t		 total = 0, at = 0;
	int		 i, r;

	for (i = 0; i < threads; i++)
		total += workers[i].count;
	if ((all = malloc((total > 0 ? total : 1) * sizeof *all)) == NULL)
		return (-1);
	for (i = 0; i < threads; i++) {
		memcpy(all + at, workers[i].latencies,
		    workers[i].count * sizeof *all);
		at += workers[i].count;
		for (r = 0; r < CALL_RESULTS; r++)
			counts[r] += workers[i].counts[r];
		made += workers[i].made;
	}
	qsort(all, total, sizeof *all, compare_ns);
	printf("{\"mode\": \"%s\", \"callers\": %d, \"threads\": %d, "
	    "\"size\": %zu, \"seconds\": %.3f, \"stored\": %llu, "
	    "\"refused\": %llu, \"failed\": %llu, \"made\": %llu, "
	    "\"calls_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
	    "\"p999_us\": %.1f, \"max_us\": %.1f}\n",
	    load->persistent ? "persistent" : "new", callers, threads,
	    load->size, seconds, (unsigned long long)counts[CALL_STORED],
	    (unsigned long long)counts[CALL_REFUSED],
	    (unsigned long long)counts[CALL_FAILED], (unsigned long long)made,
	    seconds > 0 ? counts[CALL_STORED] / seconds : 0,
	    percentile_us(all, total, 0.50), percentile_us(all, total, 0.99),
	    percentile_us(all, total, 0.999),
	    total > 0 ? (double)all[total - 1] / 1000.0 : 0);
	free(all);
	return (counts[CALL_REFUSED] + counts[CALL_FAILED] == 0 &&
	    counts[CALL_STORED] > 0 ? 0 : 1);
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadgen [-c callers] [-d seconds | -n count] "
	    "[-m persistent | new] [-s size] [-t threads] [-w warmup] "
	    "socket\n");
	exit(2);
}

static double
number(const char *text, double low, double high)
{
	char	*end;
	double	 value;

	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || value < low ||
	    value > high)
		usage();
	return (value);
}

/* Share the callers out among the threads, and start them. */
static int
start_workers(struct worker *workers, int threads, struct caller *callers,
    int n, const struct load *load)
{
	int	i, t;

	for (t = 0; t < threads; t++) {
		workers[t].load = load;
		workers[t].callers = callers + n * t / threads;
		workers[t].count_callers = n * (t + 1) / threads -
		    n * t / threads;
		if ((workers[t].queue =
		    grpc_completion_queue_create_for_next(NULL)) == NULL)
			return (-1);
		for (i = 0; i < workers[t].count_callers; i++)
			workers[t].callers[i].worker = &workers[t];
	}
	for (i = 0; i < n; i++)
		callers[i].id = i;
	for (t = 0; t < threads; t++)
		if (pthread_create(&workers[t].thread, NULL, worker_main,
		    &workers[t]) != 0)
			return (-1);
	return (0);
}

int
main(int argc, char *argv[])
{
	struct caller	*callers;
	struct worker	*workers;
	struct load	 load;
	double		 seconds = 5, warmup = 0.5, count = 0;
	int64_t		 started;
	long		 cpus;
	int		 ch, i, n = 16, threads = 0, status;

	memset(&load, 0, sizeof load);
	load.persistent = true;
	load.size = 300;
	while ((ch = getopt(argc, argv, "c:d:m:n:s:t:w:")) != -1) {
		switch (ch) {
		case 'c':
			n = (int)number(optarg, 1, 1024);
			break;
		case 'd':
			seconds = number(optarg, 0.1, 3600);
			break;
		case 'm':
			if (strcmp(optarg, "persistent") != 0 &&
			    strcmp(optarg, "new") != 0)
				usage();
			load.persistent = strcmp(optarg, "persistent") == 0;
			break;
		case 'n':
			count = number(optarg, 1, 1e12);
			break;
		case 's':
			load.size = (size_t)number(optarg, 1, 1 << 20);
			break;
		case 't':
			threads = (int)number(optarg, 1, 64);
			break;
		case 'w':
			warmup = number(optarg, 0, 60);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	if (threads == 0)
		threads = (cpus = sysconf(_SC_NPROCESSORS_ONLN)) > 1 ?
		    (int)(cpus / 2) : 1;
	if (threads > n)
		threads = n;
	if (asprintf(&load.target, "unix:%s", argv[optind]) == -1 ||
	    (callers = calloc((size_t)n, sizeof *callers)) == NULL ||
	    (workers = calloc((size_t)threads, sizeof *workers)) == NULL)
		return (1);
	grpc_init();
	started = now_ns();
	if (count > 0) {
		load.per_caller = (uint64_t)count / (uint64_t)n;
		load.extra = (uint64_t)count % (uint64_t)n;
	} else {
		load.measure_ns = started + (int64_t)(warmup * 1e9);
		load.end_ns = load.measure_ns + (int64_t)(seconds * 1e9);
	}
	if (start_workers(workers, threads, callers, n, &load) == -1)
		return (1);
	for (i = 0; i < threads; i++)
		pthread_join(workers[i].thread, NULL);
	if (count > 0)
		seconds = (double)(now_ns() - started) / 1e9;
	status = report(workers, threads, n, &load, seconds);
	grpc_shutdown();
	for (i = 0; i < threads; i++)
		free(workers[i].latencies);
	free(workers);
	free(callers);
	free(load.target);
	return (status);
}
