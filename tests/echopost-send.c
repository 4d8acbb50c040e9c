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
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <jansson.h>

#include "echopost.h"
#include "logagent.pb-c.h"

struct sender {
	pthread_t	 thread;
	int		 id;
	long		 count;
	const char	*target;
	const char	*api_key;
	const char	*pipeline;
	const char	*message;
	long		 stored;
	long		 refused;
	long		 failed;
};

static grpc_byte_buffer *
pack_request(const struct sender *s, long seq)
{
	Logagent__LogRequest	 request = LOGAGENT__LOG_REQUEST__INIT;
	grpc_byte_buffer	*buffer;
	grpc_slice		 slice;
	json_t			*log;
	char			*json, *pipelines[1];
	size_t			 len;

	log = json_pack("{s:I, s:i, s:s}", "seq", (json_int_t)seq, "thread",
	    s->id, "message", s->message);
	json = log != NULL ? json_dumps(log, JSON_COMPACT) : NULL;
	json_decref(log);
	if (json == NULL)
		return (NULL);
	pipelines[0] = (char *)s->pipeline;
	request.json_data = json;
	request.api_key = (char *)s->api_key;
	request.n_pipelines = 1;
	request.pipelines = pipelines;
	len = logagent__log_request__get_packed_size(&request);
	slice = grpc_slice_malloc(len);
	logagent__log_request__pack(&request, GRPC_SLICE_START_PTR(slice));
	free(json);
	buffer = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return (buffer);
}

/* 1 stored, 0 refused, -1 the call failed. */
static int
read_answer(grpc_byte_buffer *answer)
{
	Logagent__LogResponse	*response;
	grpc_byte_buffer_reader	 reader;
	grpc_slice		 slice;
	int			 result;

	if (answer == NULL || !grpc_byte_buffer_reader_init(&reader, answer))
		return (-1);
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	response = logagent__log_response__unpack(NULL,
	    GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	if (response == NULL)
		return (-1);
	result = response->success ? 1 : 0;
	if (!response->success)
		fprintf(stderr, "echopost-send: refused: %s\n",
		    response->message);
	logagent__log_response__free_unpacked(response, NULL);
	return (result);
}

static int
send_one(const struct sender *s, long seq)
{
	grpc_completion_queue	*queue;
	grpc_channel_credentials *credentials;
	grpc_channel		*channel;
	grpc_call		*call;
	grpc_metadata_array	 initial, trailing;
	grpc_byte_buffer	*request, *answer = NULL;
	grpc_status_code	 status = GRPC_STATUS_UNKNOWN;
	grpc_slice		 details;
	grpc_event		 event;
	grpc_op			 ops[6];
	int			 result = -1;

	if ((request = pack_request(s, seq)) == NULL)
		return (-1);
	queue = grpc_completion_queue_create_for_pluck(NULL);
	credentials = grpc_insecure_credentials_create();
	channel = grpc_channel_create(s->target, credentials, NULL);
	grpc_channel_credentials_release(credentials);
	call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS,
	    queue, grpc_slice_from_static_string(SENDLOG_METHOD), NULL,
	    gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
	    gpr_time_from_seconds(10, GPR_TIMESPAN)), NULL);
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = request;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &answer;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
		event = grpc_completion_queue_pluck(queue, call,
		    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (event.success && status == GRPC_STATUS_OK)
			result = read_answer(answer);
		else
			fprintf(stderr, "echopost-send: call failed, status "
			    "%d\n", (int)status);
		grpc_slice_unref(details);
	}
	grpc_byte_buffer_destroy(request);
	if (answer != NULL)
		grpc_byte_buffer_destroy(answer);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	grpc_call_unref(call);
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

	for (seq = 0; seq < s->count; seq++) {
		switch (send_one(s, seq)) {
		case 1:
			s->stored++;
			break;
		case 0:
			s->refused++;
			break;
		default:
			s->failed++;
		}
	}
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
	long		 stored = 0, refused = 0, failed = 0, threads = 1;
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
		stored += senders[i].stored;
		refused += senders[i].refused;
		failed += senders[i].failed;
	}
	grpc_shutdown();
	printf("sent %ld, stored %ld, refused %ld, failed %ld\n",
	    stored + refused + failed, stored, refused, failed);
	free(senders);
	free(target);
	return (stored == base.count * threads ? 0 : 1);
}
