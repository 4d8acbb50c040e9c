/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * request.h: a SendLog request, checked and encoded as a spool record.
 *
 * This is the whole path from bytes on the socket to bytes in the spool,
 * kept apart from gRPC so that it can be tested and fuzzed on its own.
 */
#ifndef REQUEST_H
#define REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "echopost.h"

int	request_to_record(const void *, size_t, int64_t, void **, size_t *,
	    char [CAUSE_SIZE]);
void   *response_pack(int, const char *, size_t *);

#endif
