/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * payload.c: the log every bench tool sends, and the clock they time with.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "payload.h"

int64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/*
 * A JSON object of exactly size bytes when size allows it: the message is
 * padding, so that every record costs the same to store and to send.
 */
char *
payload_make(uint64_t seq, int caller, size_t size)
{
	char	*text;
	int	 head;
	size_t	 pad;

	head = snprintf(NULL, 0, "{\"seq\":%llu,\"caller\":%d,"
	    "\"message\":\"\"}", (unsigned long long)seq, caller);
	pad = size > (size_t)head ? size - (size_t)head : 0;
	if ((text = malloc((size_t)head + pad + 1)) == NULL)
		return (NULL);
	head = snprintf(text, (size_t)head + 1, "{\"seq\":%llu,\"caller\":%d,"
	    "\"message\":\"", (unsigned long long)seq, caller);
	memset(text + head, 'x', pad);
	strcpy(text + head + pad, "\"}");
	return (text);
}
