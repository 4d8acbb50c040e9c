/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * request.c: check a SendLog request and encode it as a record.
 *
 * json_data must be one JSON object; it is stored as the text received, so
 * that the server gets exactly what the SDK sent. Pipelines are stored as a
 * JSON array, ready to splice into the delivery body.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "logagent.pb-c.h"
#include "record.h"
#include "request.h"
#include "util.h"

static int
check_payload(const char *text, char reason[CAUSE_SIZE])
{
	json_error_t	 error;
	json_t		*value;
	int		 is_object;

	/* Numbers are only checked, never converted: read them as reals. */
	value = json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL,
	    &error);
	if (value == NULL) {
		cause_set(reason, 0, "json_data is not valid JSON: %s (at byte "
		    "%d)", error.text, error.position);
		return (-1);
	}
	is_object = json_is_object(value);
	json_decref(value);
	if (!is_object) {
		cause_set(reason, 0, "json_data must be a JSON object");
		return (-1);
	}
	return (0);
}

static char *
pipelines_json(const Logagent__LogRequest *request, char reason[CAUSE_SIZE])
{
	json_t	*list, *name;
	char	*text;
	size_t	 i;

	if ((list = json_array()) == NULL)
		goto memory;
	for (i = 0; i < request->n_pipelines; i++) {
		name = json_string(request->pipelines[i]);
		if (name == NULL) {
			json_decref(list);
			cause_set(reason, 0, "pipeline %zu is not valid UTF-8",
			    i);
			return (NULL);
		}
		if (json_array_append_new(list, name) == -1) {
			json_decref(list);
			goto memory;
		}
	}
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	if (text != NULL)
		return (text);
memory:
	cause_set(reason, 0, "out of memory");
	return (NULL);
}

/*
 * Returns 0 and a malloc'd record in *encoded, or -1 and why in reason.
 */
int
request_to_record(const void *message, size_t len, int64_t now_us,
    void **encoded, size_t *encoded_size, char reason[CAUSE_SIZE])
{
	Logagent__LogRequest	*request;
	struct record		 r;
	char			*pipelines = NULL;
	int			 status = -1;

	*encoded = NULL;
	request = logagent__log_request__unpack(NULL, len, message);
	if (request == NULL) {
		cause_set(reason, 0, "malformed LogRequest message");
		return (-1);
	}
	/*
	 * protobuf-c ends strings at a NUL byte: a string that held one came
	 * out shorter, and so does the message packed again.
	 */
	if (logagent__log_request__get_packed_size(request) != len) {
		cause_set(reason, 0, "a string holds a NUL byte, or "
		    "the message is not in canonical protobuf encoding");
		goto out;
	}
	if (check_payload(request->json_data, reason) == -1)
		goto out;
	if (!header_safe(request->api_key)) {
		cause_set(reason, 0, "api_key holds control characters");
		goto out;
	}
	if ((pipelines = pipelines_json(request, reason)) == NULL)
		goto out;
	r.received_at_us = now_us;
	r.api_key = request->api_key;
	r.api_key_len = strlen(request->api_key);
	r.pipelines = pipelines;
	r.pipelines_len = strlen(pipelines);
	r.payload = request->json_data;
	r.payload_len = strlen(request->json_data);
	if ((*encoded = record_encode(&r, encoded_size)) == NULL)
		cause_set(reason, 0, "out of memory");
	else
		status = 0;
out:
	free(pipelines);
	logagent__log_request__free_unpacked(request, NULL);
	return (status);
}

/* A packed LogResponse, malloc'd, or NULL. */
void *
response_pack(int success, const char *message, size_t *len)
{
	Logagent__LogResponse	 response = LOGAGENT__LOG_RESPONSE__INIT;
	void			*data;

	response.success = success;
	response.message = (char *)message;
	*len = logagent__log_response__get_packed_size(&response);
	if ((data = malloc(*len > 0 ? *len : 1)) == NULL)
		return (NULL);
	logagent__log_response__pack(&response, data);
	return (data);
}
