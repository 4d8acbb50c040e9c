/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * call.h: the bench's log (payload.h) as a SendLog request, and the call
 * that sends it (tests/grpc-call.h, the SDK's way of calling).
 */
#ifndef BENCH_CALL_H
#define BENCH_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "grpc-call.h"

grpc_byte_buffer	*call_request(uint64_t, int, size_t);

#endif
