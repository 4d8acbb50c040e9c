/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * payload.h: the log every bench tool sends, and the clock they time with.
 *
 * The same json_data goes over gRPC (loadgen) and, wrapped as echopost
 * delivers it, over HTTP (curl-baseline), so that both sides of a
 * comparison move the same bytes.
 */
#ifndef BENCH_PAYLOAD_H
#define BENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define PAYLOAD_PIPELINE	"bench"
#define PAYLOAD_API_KEY		"bench-key"

char	*payload_make(uint64_t, int, size_t);
int64_t	 now_ns(void);

#endif
