/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * noop-server: the benchmark's baseline. It runs echopost's own listener
 * with a store that keeps nothing (as OpenSMTPD's queue_null), so it
 * unpacks and checks every SendLog call as echopost does and answers
 * success: true, but stores nothing. What echopost does
 * beyond this is the cost of keeping the logs.
 *
 *	noop-server dir
 *
 * It serves on dir/data-nadhi-agent.sock, made as echopost makes it.
 * It serves until SIGTERM or SIGINT, then closes the listener as echopost
 * does and exits 0.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

#define POLL_MS		100
#define SOCKET_MODE	0600
#define MESSAGE_MAX	(1024 * 1024)

static sigset_t	stop_signals;
static uint64_t	next_seq;

static int
null_append(void *arg, const void *data, size_t size, uint64_t *seq)
{
	(void)arg;
	(void)data;
	(void)size;
	*seq = next_seq++;
	return (0);
}

static int
null_commit(void *arg)
{
	(void)arg;
	return (0);
}

static void
null_roll(void *arg)
{
	(void)arg;
}

static const char *
null_error(void *arg)
{
	(void)arg;
	return ("");
}

static const struct store null_store = {
	NULL, null_append, null_commit, null_roll, null_error
};

static int
stop_requested(void)
{
	struct timespec	now = { 0, 0 };

	return (sigtimedwait(&stop_signals, NULL, &now) > 0);
}

int
main(int argc, char *argv[])
{
	struct listener_config	 config;
	struct listener		*listener;
	char			 cause[CAUSE_SIZE];
	int			 dirfd;

	if (argc != 2) {
		fprintf(stderr, "usage: noop-server dir\n");
		return (2);
	}
	/* Blocked before gRPC starts its threads, so they inherit it. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) == -1 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return (1);
	log_set_level(LEVEL_WARN);
	if ((dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fchdir(dirfd) == -1) {
		perror(argv[1]);
		return (1);
	}
	memset(&config, 0, sizeof config);
	config.dirfd = dirfd;
	config.socket_mode = SOCKET_MODE;
	config.max_message_size = MESSAGE_MAX;
	if ((listener = listener_start(&config, &null_store, cause)) == NULL) {
		fprintf(stderr, "noop-server: listen: %s\n", cause);
		return (1);
	}
	/* The same loop as echopost's: poll, then look for a signal. */
	while (listener_poll(listener, POLL_MS) == 0 && !stop_requested())
		;
	listener_close(listener, NULL);
	close(dirfd);
	return (0);
}
