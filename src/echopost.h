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
 * Errors, one way per layer. The bottom layer, files under DIR as bytes
 * (journal.c, journal_reader.c, sealed.c, sealed_import.c, position.c,
 * files.c), returns -1 with errno set: EBADMSG for data that does not
 * check out, and an errno that tells the rest apart where the caller
 * acts on it. The spool and everything above it say why in words for
 * the admin, built by cause_set() (util.c) alone into a buffer of
 * CAUSE_SIZE, room for a path and what went wrong with it, errno last
 * (EBADMSG reads "damaged"); the layer that knows which file it was
 * names it. A constructor that fails frees what it built, returns NULL
 * and fills the caller's buffer.
 */
#define CAUSE_SIZE		(PATH_MAX + 256)

/*
 * Who may touch what, in every structure two threads share. Each field
 * is marked with letters:
 *	I	set before the second thread starts, then only read
 *	M	main's (the listener's) thread only
 *	F	the forwarder's thread only
 *	A	atomic: any thread, through atomic_load and atomic_store
 *	a-z	written only with the lock of that letter held (the struct
 *		names its locks); read with it held too, except by a thread
 *		that is the field's only writer, named by M or F after the
 *		lock's letter ("aM": only main writes it, under a, and reads
 *		it without a; the forwarder reads it under a)
 * A structure may name an owner of its own (listener.c: G, gRPC's
 * threads). Before the second thread starts and after it is joined, the thread
 * that opens or closes the structure may touch any field of it. An
 * object that one thread alone ever holds (a reader spool, for --status)
 * has no such marks to keep.
 */

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
