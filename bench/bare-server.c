/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * bare-server: the ingest benchmark's ceiling. A gRPC C-core server on a
 * UNIX socket that answers every SendLog with success: true, without
 * reading the request: what the transport alone costs, polled by one
 * thread as echopost's listener is.
 *
 *	bare-server socket
 *
 * It serves until SIGINT or SIGTERM.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "echopost.h"

#define SLOTS		256
#define POLL_MS		100

/* LogResponse { success: true }: field 1, varint, 1. */
static const char STORED[] = { 0x08, 0x01 };

struct slot {
	grpc_call		*call;
	gpr_timespec		 deadline;
	grpc_metadata_array	 metadata;
	grpc_byte_buffer	*request;
	grpc_byte_buffer	*response;
	int			 cancelled;
	int			 answering;
};

static grpc_server		*server;
static grpc_completion_queue	*queue;
static void			*method;
static grpc_slice		 stored;
static volatile sig_atomic_t	 stop;

static void
on_signal(int signo)
{
	stop = 1;
}

static int
request(struct slot *s)
{
	memset(s, 0, sizeof *s);
	grpc_metadata_array_init(&s->metadata);
	return (grpc_server_request_registered_call(server, method, &s->call,
	    &s->deadline, &s->metadata, &s->request, queue, queue, s) ==
	    GRPC_CALL_OK ? 0 : -1);
}

static int
answer(struct slot *s)
{
	grpc_op	ops[4];

	s->response = grpc_raw_byte_buffer_create(&stored, 1);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->response;
	ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
	ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
	s->answering = 1;
	return (grpc_call_start_batch(s->call, ops, 4, s, NULL) ==
	    GRPC_CALL_OK ? 0 : -1);
}

static void
release(struct slot *s)
{
	if (s->call != NULL)
		grpc_call_unref(s->call);
	if (s->request != NULL)
		grpc_byte_buffer_destroy(s->request);
	if (s->response != NULL)
		grpc_byte_buffer_destroy(s->response);
	grpc_metadata_array_destroy(&s->metadata);
}

/* A call came (answer it) or was answered (take the next in its slot). */
static int
handle(struct slot *s, int success)
{
	if (!s->answering && success && answer(s) == 0)
		return (0);
	release(s);
	return (stop ? 0 : request(s));
}

static int
start(const char *path, struct slot *slots)
{
	grpc_server_credentials	*credentials;
	char			*address;
	int			 port, i;

	if (asprintf(&address, "unix:%s", path) == -1)
		return (-1);
	queue = grpc_completion_queue_create_for_next(NULL);
	server = grpc_server_create(NULL, NULL);
	method = grpc_server_register_method(server, SENDLOG_METHOD, NULL,
	    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	grpc_server_register_completion_queue(server, queue, NULL);
	credentials = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(server, address, credentials);
	grpc_server_credentials_release(credentials);
	free(address);
	if (method == NULL || port == 0)
		return (-1);
	grpc_server_start(server);
	for (i = 0; i < SLOTS; i++)
		if (request(&slots[i]) == -1)
			return (-1);
	return (0);
}

int
main(int argc, char *argv[])
{
	static struct slot	slots[SLOTS];
	grpc_event		event;
	int			shutdown_tag;

	if (argc != 2) {
		fprintf(stderr, "usage: bare-server socket\n");
		return (2);
	}
	if (signal(SIGINT, on_signal) == SIG_ERR ||
	    signal(SIGTERM, on_signal) == SIG_ERR ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return (1);
	grpc_init();
	stored = grpc_slice_from_static_buffer(STORED, sizeof STORED);
	unlink(argv[1]);
	if (start(argv[1], slots) == -1) {
		fprintf(stderr, "bare-server: cannot serve on %s\n", argv[1]);
		return (1);
	}
	while (!stop) {
		event = grpc_completion_queue_next(queue, gpr_time_add(
		    gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(POLL_MS,
		    GPR_TIMESPAN)), NULL);
		if (event.type == GRPC_OP_COMPLETE &&
		    handle(event.tag, event.success) == -1)
			break;
	}
	grpc_server_shutdown_and_notify(server, queue, &shutdown_tag);
	grpc_server_cancel_all_calls(server);
	do
		event = grpc_completion_queue_next(queue,
		    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	while (event.type == GRPC_OP_COMPLETE && event.tag != &shutdown_tag &&
	    handle(event.tag, event.success) == 0);
	grpc_server_destroy(server);
	grpc_completion_queue_shutdown(queue);
	while (grpc_completion_queue_next(queue,
	    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(queue);
	grpc_shutdown();
	unlink(argv[1]);
	return (0);
}
