/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * call.c: a LogRequest of a given size, as every bench tool sends it.
 */
#include "config.h"

#include <stdlib.h>

#include <grpc/grpc.h>

#include "call.h"
#include "payload.h"

grpc_byte_buffer *
call_request(uint64_t seq, int caller, size_t size)
{
	grpc_byte_buffer	*buffer;
	char			*json;

	if ((json = payload_make(seq, caller, size)) == NULL)
		return (NULL);
	buffer = call_pack(json, PAYLOAD_PIPELINE, PAYLOAD_API_KEY);
	free(json);
	return (buffer);
}
