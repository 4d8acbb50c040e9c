/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * record.c: encode and decode spool records.
 *
 * Layout, integers big-endian:
 *	crc32		4	of every byte after it
 *	version		1	RECORD_VERSION
 *	received_at	8	microseconds since the epoch, UTC
 *	then three fields, each a 4-byte length and that many bytes plus a NUL:
 *	api_key, pipelines, payload
 * The NULs let a decoded record hand out C strings without a copy.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "record.h"
#include "util.h"

#define RECORD_VERSION	1
#define HEADER_SIZE	(4 + 1 + 8)

static unsigned char *
put_field(unsigned char *p, const char *text, size_t len)
{
	be32enc(p, (uint32_t)len);
	p += 4;
	memcpy(p, text, len);
	p[len] = '\0';
	return (p + len + 1);
}

/* Returns a malloc'd encoding of r and its size, or NULL. */
void *
record_encode(const struct record *r, size_t *size)
{
	unsigned char	*data, *p;

	if (r->api_key_len > UINT32_MAX || r->pipelines_len > UINT32_MAX ||
	    r->payload_len > UINT32_MAX)
		return (NULL);
	*size = HEADER_SIZE + 3 * 5 + r->api_key_len + r->pipelines_len +
	    r->payload_len;
	if ((data = malloc(*size)) == NULL)
		return (NULL);
	data[4] = RECORD_VERSION;
	be64enc(data + 5, (uint64_t)r->received_at_us);
	p = put_field(data + HEADER_SIZE, r->api_key, r->api_key_len);
	p = put_field(p, r->pipelines, r->pipelines_len);
	put_field(p, r->payload, r->payload_len);
	be32enc(data, checksum(0, data + 4, *size - 4));
	return (data);
}

static const unsigned char *
get_field(const unsigned char *p, const unsigned char *end, const char **text,
    size_t *len)
{
	if (end - p < 4)
		return (NULL);
	*len = be32dec(p);
	p += 4;
	if ((size_t)(end - p) < *len + 1 || p[*len] != '\0')
		return (NULL);
	*text = (const char *)p;
	return (p + *len + 1);
}

/* Fills r with pointers into data, which must outlive r. */
enum record_status
record_decode(const void *data, size_t size, struct record *r)
{
	const unsigned char	*p = data, *end = p + size;

	if (size < HEADER_SIZE)
		return (RECORD_TRUNCATED);
	if (be32dec(p) != checksum(0, p + 4, size - 4))
		return (RECORD_BAD_CHECKSUM);
	if (p[4] != RECORD_VERSION)
		return (RECORD_BAD_VERSION);
	r->received_at_us = (int64_t)be64dec(p + 5);
	p += HEADER_SIZE;
	if ((p = get_field(p, end, &r->api_key, &r->api_key_len)) == NULL ||
	    (p = get_field(p, end, &r->pipelines, &r->pipelines_len)) == NULL ||
	    (p = get_field(p, end, &r->payload, &r->payload_len)) == NULL)
		return (RECORD_TRUNCATED);
	return (RECORD_OK);
}

const char *
record_status_string(enum record_status status)
{
	switch (status) {
	case RECORD_OK:
		return ("ok");
	case RECORD_TRUNCATED:
		return ("record truncated");
	case RECORD_BAD_VERSION:
		return ("unknown record version");
	case RECORD_BAD_CHECKSUM:
		return ("checksum mismatch");
	}
	return ("unknown record status");
}

/*
 * One line of a session log: {"log_data": {"payload": ..., "pipelines":
 * ..., "received_at": ...}, "context": ...}. The payload and pipelines are
 * spliced in as stored, so the line shows exactly what was received;
 * context is compact JSON text. Returns a malloc'd line ending in a newline.
 */
char *
record_log_line(const struct record *r, const char *context)
{
	char	 received[TIME_BUFSIZE], *line;

	format_time(r->received_at_us, received);
	if (asprintf(&line, "{\"log_data\":{\"payload\":%s,\"pipelines\":%s,"
	    "\"received_at\":\"%s\"},\"context\":%s}\n", r->payload,
	    r->pipelines, received, context) == -1)
		return (NULL);
	return (line);
}
