/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * grpc-call.h: one SendLog call made the way the SDK makes it, for
 * tests/echopost-send and the tools in bench/.
 *
 * Every channel gets its own subchannel pool: gRPC would otherwise let
 * channels to the same target share one connection, and then "a new
 * channel per call" would not mean a new connection per call, which is
 * what the SDK costs the server.
 */
#ifndef TESTS_GRPC_CALL_H
#define TESTS_GRPC_CALL_H

#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

enum call_result {
	CALL_STORED,		/* success: true */
	CALL_REFUSED,		/* success: false */
	CALL_FAILED,		/* an RPC error */
	CALL_RESULTS		/* how many there are: counts[CALL_RESULTS] */
};

/* A call in flight: what its batch fills in. */
struct call_pending {
	grpc_call		*call;
	grpc_metadata_array	 initial;
	grpc_metadata_array	 trailing;
	grpc_byte_buffer	*answer;
	grpc_status_code	 status;
	grpc_slice		 details;
	bool			 started;
};

grpc_channel		*call_channel(const char *);
grpc_byte_buffer	*call_pack(const char *, const char *, const char *);
int			 call_start(struct call_pending *, grpc_channel *,
			    grpc_completion_queue *, grpc_byte_buffer *,
			    int64_t, void *);
enum call_result	 call_finish(struct call_pending *, int);
enum call_result	 call_send(grpc_channel *, grpc_completion_queue *,
			    grpc_byte_buffer *, int64_t);

#endif
