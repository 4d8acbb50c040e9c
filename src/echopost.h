/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * echopost.h: names and limits shared by every module of echopost.
 *
 * The file names under DIR are fixed by the SDK and the contract; keep them
 * here so that no module spells them on its own.
 */
#ifndef ECHOPOST_H
#define ECHOPOST_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define SOCKET_NAME		"data-nadhi-agent.sock"
#define SOCKET_ANCHOR_NAME	".agent.sock"
#define STATUS_LOCK_NAME	"agent-status.lock"
#define PID_FILE_NAME		"echopost.pid"
#define SPOOL_NAME		"echopost.spool"
#define QUARANTINE_NAME		"echopost-quarantine.jsonl"
#define REFUSED_NAME		"echopost.refused"
#define STATUS_NAME		"echopost.status"
#define SESSION_PREFIX		"session-"
#define SUCCESS_LOG_NAME	"agent-success.log"
#define FAILURE_LOG_NAME	"agent-failure.log"
#define EVENT_LOG_NAME		"agent.log"

/*
 * A constructor that fails frees what it built, returns NULL and writes
 * why into the caller's buffer of this size.
 */
#define CAUSE_SIZE		(PATH_MAX + 256)

#define SENDLOG_METHOD		"/logagent.LogAgent/SendLog"

/*
 * Where the listener puts records: append each call's, commit once per
 * group (0 only when all are on disk), roll to a new journal after a
 * group, and say why an append or commit failed. echopost's is the spool
 * (spool_store); bench/noop-server.c has one that keeps nothing.
 */
struct store {
	void		*arg;
	int		(*append)(void *, const void *, size_t, uint64_t *);
	int		(*commit)(void *);
	void		(*roll)(void *);
	const char	*(*error)(void *);
};

/* sizeof(((struct sockaddr_un *)0)->sun_path) - 1 on Linux. */
#define SOCKET_PATH_MAX		107

#endif
