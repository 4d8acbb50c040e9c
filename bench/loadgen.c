/*
 * loadgen: SendLog load on a socket, from callers that each have a thread
 * of their own, and what it got: calls/s and acknowledgement latency.
 *
 *	loadgen [-c callers] [-d seconds | -n count] [-m persistent | new]
 *	    [-s size] [-w warmup] socket
 *
 * "persistent" keeps one channel (one connection) per caller; "new" opens
 * a channel for every call and closes it after, as the SDK does. With -d,
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

struct caller {
	pthread_t		 thread;
	int			 id;
	const struct load	*load;
	int64_t			*latencies;
	size_t			 count;
	size_t			 room;
	uint64_t		 counts[CALL_RESULTS];
	uint64_t		 made;		/* counted or not */
};

static int
keep_latency(struct caller *c, int64_t ns)
{
	int64_t	*more;
	size_t	 room;

	if (c->count == c->room) {
		room = c->room > 0 ? c->room * 2 : 4096;
		if ((more = realloc(c->latencies, room * sizeof *more)) ==
		    NULL)
			return (-1);
		c->latencies = more;
		c->room = room;
	}
	c->latencies[c->count++] = ns;
	return (0);
}

/* One call on its own channel, or on the caller's; its latency in ns. */
static enum call_result
one_call(struct caller *c, grpc_channel *kept, grpc_completion_queue *queue,
    uint64_t seq, int64_t *start, int64_t *end)
{
	const struct load	*load = c->load;
	grpc_byte_buffer	*request;
	grpc_channel		*channel;
	enum call_result	 result;

	if ((request = call_request(seq, c->id, load->size)) == NULL)
		return (CALL_FAILED);
	*start = now_ns();
	channel = kept != NULL ? kept : call_channel(load->target);
	result = call_send(channel, queue, request, CALL_DEADLINE_MS);
	if (kept == NULL)
		grpc_channel_destroy(channel);
	*end = now_ns();
	grpc_byte_buffer_destroy(request);
	return (result);
}

static bool
more_calls(const struct caller *c, uint64_t seq, int64_t now)
{
	const struct load	*load = c->load;

	if (load->end_ns == 0)
		return (seq < load->per_caller +
		    ((uint64_t)c->id < load->extra ? 1 : 0));
	return (now < load->end_ns);
}

static void *
caller_main(void *arg)
{
	struct caller		*c = arg;
	const struct load	*load = c->load;
	grpc_completion_queue	*queue;
	grpc_channel		*kept = NULL;
	enum call_result	 result;
	int64_t			 start, end = now_ns();
	uint64_t		 seq;

	queue = grpc_completion_queue_create_for_pluck(NULL);
	if (load->persistent)
		kept = call_channel(load->target);
	for (seq = 0; more_calls(c, seq, end); seq++) {
		result = one_call(c, kept, queue, seq, &start, &end);
		c->made++;
		/* In a timed run, warm-up calls and late ones do not count. */
		if (load->end_ns != 0 && (end < load->measure_ns ||
		    end > load->end_ns))
			continue;
		if (result == CALL_STORED && keep_latency(c, end - start) == -1)
			result = CALL_FAILED;
		c->counts[result]++;
	}
	if (kept != NULL)
		grpc_channel_destroy(kept);
	grpc_completion_queue_shutdown(queue);
	grpc_completion_queue_destroy(queue);
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
report(struct caller *callers, int n, const struct load *load,
    double seconds)
{
	int64_t		*all;
	uint64_t	 counts[CALL_RESULTS] = { 0 }, made = 0;
	size_t		 total = 0, at = 0;
	int		 i, r;

	for (i = 0; i < n; i++)
		total += callers[i].count;
	if ((all = malloc((total > 0 ? total : 1) * sizeof *all)) == NULL)
		return (-1);
	for (i = 0; i < n; i++) {
		memcpy(all + at, callers[i].latencies,
		    callers[i].count * sizeof *all);
		at += callers[i].count;
		for (r = 0; r < CALL_RESULTS; r++)
			counts[r] += callers[i].counts[r];
		made += callers[i].made;
	}
	qsort(all, total, sizeof *all, compare_ns);
	printf("{\"mode\": \"%s\", \"callers\": %d, \"size\": %zu, "
	    "\"seconds\": %.3f, \"stored\": %llu, \"refused\": %llu, "
	    "\"failed\": %llu, \"made\": %llu, \"calls_per_s\": %.1f, "
	    "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
	    "\"max_us\": %.1f}\n",
	    load->persistent ? "persistent" : "new", n, load->size, seconds,
	    (unsigned long long)counts[CALL_STORED],
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
	    "[-m persistent | new] [-s size] [-w warmup] socket\n");
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

int
main(int argc, char *argv[])
{
	struct caller	*callers;
	struct load	 load;
	double		 seconds = 5, warmup = 0.5, count = 0;
	int64_t		 started;
	int		 ch, i, n = 16, status;

	memset(&load, 0, sizeof load);
	load.persistent = true;
	load.size = 300;
	while ((ch = getopt(argc, argv, "c:d:m:n:s:w:")) != -1) {
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
		case 'w':
			warmup = number(optarg, 0, 60);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	if (asprintf(&load.target, "unix:%s", argv[optind]) == -1 ||
	    (callers = calloc((size_t)n, sizeof *callers)) == NULL)
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
	for (i = 0; i < n; i++) {
		callers[i].id = i;
		callers[i].load = &load;
		if (pthread_create(&callers[i].thread, NULL, caller_main,
		    &callers[i]) != 0)
			return (1);
	}
	for (i = 0; i < n; i++)
		pthread_join(callers[i].thread, NULL);
	if (count > 0)
		seconds = (double)(now_ns() - started) / 1e9;
	status = report(callers, n, &load, seconds);
	grpc_shutdown();
	for (i = 0; i < n; i++)
		free(callers[i].latencies);
	free(callers);
	free(load.target);
	return (status);
}
