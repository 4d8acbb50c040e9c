/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * listener.h: the gRPC server on DIR/data-nadhi-agent.sock.
 *
 * It takes SendLog calls, turns each into a record, appends the records of
 * the calls that arrived together to the spool, syncs once (group commit)
 * and only then answers them. success: true means "on disk".
 *
 * The records go to a struct store (echopost.h): the spool's, or in
 * bench/ one that keeps nothing, the baseline echopost is measured by.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stdint.h>
#include <sys/types.h>

#include "echopost.h"

/*
 * The socket is bound as SOCKET_ANCHOR_NAME relative to the working
 * directory, which must be DIR (dirfd): every name under DIR is reached
 * through it, never by a path.
 */
struct listener_config {
	int		 dirfd;
	mode_t		 socket_mode;
	int64_t		 max_message_size;
};

struct listener_counts {
	uint64_t	stored;
	uint64_t	refused;
};

struct listener;

struct listener *listener_start(const struct listener_config *,
	    const struct store *, char [CAUSE_SIZE]);
int	 listener_poll(struct listener *, int64_t);
void	 listener_keep_socket(struct listener *);
void	 listener_remove_stale(int);
void	 listener_close(struct listener *, struct listener_counts *);

#endif
