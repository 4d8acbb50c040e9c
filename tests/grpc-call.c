/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * grpc-call.c: pack a LogRequest and make one SendLog call.
 */
#include "config.h"

#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "echopost.h"
#include "grpc-call.h"
#include "logagent.pb-c.h"

grpc_channel *
call_channel(const char *target)
{
	grpc_channel_credentials	*credentials;
	grpc_channel			*channel;
	grpc_channel_args		 args;
	grpc_arg			 arg;

	arg.type = GRPC_ARG_INTEGER;
	arg.key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	arg.value.integer = 1;
	args.num_args = 1;
	args.args = &arg;
	credentials = grpc_insecure_credentials_create();
	channel = grpc_channel_create(target, credentials, &args);
	grpc_channel_credentials_release(credentials);
	return (channel);
}

/* A packed LogRequest of one log, one pipeline and a key. */
grpc_byte_buffer *
call_pack(const char *json, const char *pipeline, const char *api_key)
{
	Logagent__LogRequest	 request = LOGAGENT__LOG_REQUEST__INIT;
	grpc_byte_buffer	*buffer;
	grpc_slice		 slice;
	char			*pipelines[1];
	size_t			 len;

	pipelines[0] = (char *)pipeline;
	request.json_data = (char *)json;
	request.api_key = (char *)api_key;
	request.n_pipelines = 1;
	request.pipelines = pipelines;
	len = logagent__log_request__get_packed_size(&request);
	slice = grpc_slice_malloc(len);
	logagent__log_request__pack(&request, GRPC_SLICE_START_PTR(slice));
	buffer = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return (buffer);
}

static enum call_result
read_answer(grpc_byte_buffer *answer)
{
	Logagent__LogResponse	*response;
	grpc_byte_buffer_reader	 reader;
	grpc_slice		 slice;
	enum call_result	 result;

	if (answer == NULL || !grpc_byte_buffer_reader_init(&reader, answer))
		return (CALL_FAILED);
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	response = logagent__log_response__unpack(NULL,
	    GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	if (response == NULL)
		return (CALL_FAILED);
	result = response->success ? CALL_STORED : CALL_REFUSED;
	logagent__log_response__free_unpacked(response, NULL);
	return (result);
}

/*
 * Start one unary call on channel with request (which stays the
 * caller's); tag comes back on queue when it has ended, and call_finish
 * then tells how.
 */
int
call_start(struct call_pending *p, grpc_channel *channel,
    grpc_completion_queue *queue, grpc_byte_buffer *request,
    int64_t deadline_ms, void *tag)
{
	grpc_op	ops[6];

	memset(p, 0, sizeof *p);
	p->status = GRPC_STATUS_UNKNOWN;
	p->call = grpc_channel_create_call(channel, NULL,
	    GRPC_PROPAGATE_DEFAULTS, queue,
	    grpc_slice_from_static_string(SENDLOG_METHOD), NULL,
	    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis(deadline_ms, GPR_TIMESPAN)), NULL);
	grpc_metadata_array_init(&p->initial);
	grpc_metadata_array_init(&p->trailing);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = request;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &p->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &p->answer;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &p->trailing;
	ops[5].data.recv_status_on_client.status = &p->status;
	ops[5].data.recv_status_on_client.status_details = &p->details;
	p->started = grpc_call_start_batch(p->call, ops, 6, tag, NULL) ==
	    GRPC_CALL_OK;
	return (p->started ? 0 : -1);
}

/* How a call ended, success as its event had it; frees the call. */
enum call_result
call_finish(struct call_pending *p, int success)
{
	enum call_result	result = CALL_FAILED;

	if (p->started) {
		if (success && p->status == GRPC_STATUS_OK)
			result = read_answer(p->answer);
		grpc_slice_unref(p->details);
	}
	if (p->answer != NULL)
		grpc_byte_buffer_destroy(p->answer);
	grpc_metadata_array_destroy(&p->initial);
	grpc_metadata_array_destroy(&p->trailing);
	grpc_call_unref(p->call);
	return (result);
}

/*
 * One unary call on channel, its event plucked from queue (a pluck queue
 * the caller keeps). The request stays the caller's.
 */
enum call_result
call_send(grpc_channel *channel, grpc_completion_queue *queue,
    grpc_byte_buffer *request, int64_t deadline_ms)
{
	struct call_pending	p;
	grpc_event		event;

	if (call_start(&p, channel, queue, request, deadline_ms, &p) == -1)
		return (call_finish(&p, 0));
	event = grpc_completion_queue_pluck(queue, &p,
	    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	return (call_finish(&p, event.success));
}
