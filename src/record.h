/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * record.h: one stored log, and its encoding in the spool.
 *
 * A record keeps the request as the SDK sent it: the payload is the
 * json_data text byte for byte, so that it is forwarded "as received".
 * The encoding carries a CRC-32 that decoding verifies.
 */
#ifndef RECORD_H
#define RECORD_H

#include <stddef.h>
#include <stdint.h>

struct record {
	int64_t		 received_at_us;
	const char	*api_key;	/* may be empty: use -api-key */
	size_t		 api_key_len;
	const char	*pipelines;	/* a JSON array of strings */
	size_t		 pipelines_len;
	const char	*payload;	/* a JSON object, as received */
	size_t		 payload_len;
};

enum record_status {
	RECORD_OK,
	RECORD_TRUNCATED,
	RECORD_BAD_VERSION,
	RECORD_BAD_CHECKSUM
};

void		*record_encode(const struct record *, size_t *);
enum record_status record_decode(const void *, size_t, struct record *);
const char	*record_status_string(enum record_status);
char		*record_log_line(const struct record *, const char *);

#endif
