/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * fuzz_request.c: libFuzzer target for the path from bytes on the socket
 * to bytes in the spool. Whatever the input, request_to_record either
 * refuses it with a reason or gives a record that decodes back, with a
 * JSON object for payload and a JSON array for pipelines.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "record.h"
#include "request.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record	 r;
	json_error_t	 error;
	json_t		*payload, *pipelines;
	char		 reason[CAUSE_SIZE];
	void		*encoded;
	size_t		 encoded_size;

	if (request_to_record(data, size, 1, &encoded, &encoded_size,
	    reason) == -1) {
		if (reason[0] == '\0' || memchr(reason, '\0', CAUSE_SIZE) ==
		    NULL)
			abort();
		return (0);
	}
	if (record_decode(encoded, encoded_size, &r) != RECORD_OK ||
	    strlen(r.payload) != r.payload_len)
		abort();
	payload = json_loads(r.payload, JSON_DECODE_ANY |
	    JSON_DECODE_INT_AS_REAL, &error);
	pipelines = json_loads(r.pipelines, 0, &error);
	if (!json_is_object(payload) || !json_is_array(pipelines))
		abort();
	json_decref(payload);
	json_decref(pipelines);
	free(encoded);
	return (0);
}
