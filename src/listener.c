/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * listener.c: serve SendLog on the UNIX socket with the gRPC C core.
 *
 * One thread (main's) drives the completion queue. Calls that are ready
 * together form a group: each is checked and appended to the spool, the
 * spool is synced once, and then every call of the group is answered.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <jansson.h>

#include "echopost.h"
#include "listener.h"
#include "log.h"
#include "request.h"
#include "util.h"

/* Calls the server may hand us at once; more wait in gRPC's own queue. */
#define CALL_SLOTS		128
/* At most this many calls share one sync, so answers are not held long. */
#define GROUP_MAX		256
/* After this, calls that still have not finished at close are cancelled. */
#define CLOSE_GRACE_MS		5000

enum call_state {
	CALL_WAITING,		/* requested from the server, not arrived */
	CALL_STORING,		/* arrived, in the current group */
	CALL_ANSWERING		/* answer sent, waiting for the close */
};

/*
 * Who may touch what, in the letters of echopost.h: main's thread (M)
 * starts, polls and closes the listener, with no lock. One more:
 *	G	main's, but gRPC's threads write it too (its address goes
 *		with the request for the call, or with an operation on it),
 *		only before they hand the call's tag back through the
 *		completion queue that main's thread polls: that hand-over
 *		orders their writes before main's reads
 */
struct call {
	struct listener		*listener;	/* [I] */
	enum call_state		 state;		/* [M] */
	grpc_call		*call;		/* [G] */
	gpr_timespec		 deadline;	/* [G] */
	grpc_metadata_array	 metadata;	/* [G] */
	grpc_byte_buffer	*request;	/* [G] */
	grpc_byte_buffer	*response;	/* [M] */
	int			 cancelled;	/* [G] */
	bool			 stored;	/* [M] */
	char			 reason[CAUSE_SIZE]; /* [M] */
	STAILQ_ENTRY(call)	 group_entry;	/* [M] */
};

struct listener {
	grpc_server		*server;	/* [I] */
	grpc_completion_queue	*queue;		/* [I] */
	void			*method;	/* [I] */
	struct store		 store;		/* [I] */
	int			 dirfd;		/* [I] DIR, the caller's */
	grpc_slice		 stored_answer;	/* [I] */
	bool			 closing;	/* [M] */
	bool			 closed;	/* [M] */
	int			 shutdown_tag;	/* [I] its address is a tag */
	struct call		 slots[CALL_SLOTS]; /* [M] */
	STAILQ_HEAD(, call)	 group;		/* [M] in arrival order */
	unsigned int		 group_size;	/* [M] */
	struct listener_counts	 counts;	/* [M] */
};

static void
grpc_log(gpr_log_func_args *args)
{
	log_event(args->severity == GPR_LOG_SEVERITY_ERROR ? LEVEL_WARN :
	    LEVEL_DEBUG, "grpc", "{s:s, s:s, s:i}", "message", args->message,
	    "file", args->file, "line", args->line);
}

static int
request_call(struct listener *l, struct call *c)
{
	grpc_call_error	error;

	c->state = CALL_WAITING;
	c->call = NULL;
	c->request = NULL;
	c->response = NULL;
	c->cancelled = 0;
	c->stored = false;
	c->reason[0] = '\0';
	grpc_metadata_array_init(&c->metadata);
	error = grpc_server_request_registered_call(l->server, l->method,
	    &c->call, &c->deadline, &c->metadata, &c->request, l->queue,
	    l->queue, c);
	if (error != GRPC_CALL_OK) {
		log_event(LEVEL_ERROR, "grpc_error", "{s:s, s:i}", "call",
		    "request_registered_call", "code", (int)error);
		grpc_metadata_array_destroy(&c->metadata);
		return (-1);
	}
	return (0);
}

static void
release_call(struct call *c)
{
	if (c->call != NULL)
		grpc_call_unref(c->call);
	if (c->request != NULL)
		grpc_byte_buffer_destroy(c->request);
	if (c->response != NULL)
		grpc_byte_buffer_destroy(c->response);
	grpc_metadata_array_destroy(&c->metadata);
	c->call = NULL;
	c->request = NULL;
	c->response = NULL;
}

static void
store_call(struct listener *l, struct call *c)
{
	grpc_byte_buffer_reader	 reader;
	grpc_slice		 slice;
	void			*encoded;
	size_t			 size;
	uint64_t		 seq;

	if (c->request == NULL) {
		cause_set(c->reason, 0, "no request message");
		return;
	}
	if (!grpc_byte_buffer_reader_init(&reader, c->request)) {
		cause_set(c->reason, 0, "unreadable request");
		return;
	}
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	if (request_to_record(GRPC_SLICE_START_PTR(slice),
	    GRPC_SLICE_LENGTH(slice), clock_realtime_us(), &encoded, &size,
	    c->reason) == 0) {
		if (l->store.append(l->store.arg, encoded, size, &seq) == 0) {
			c->stored = true;
			log_event(LEVEL_DEBUG, "log_stored", "{s:I}", "seq",
			    (json_int_t)seq);
		} else
			cause_set(c->reason, 0, "storage failed: %s",
			    l->store.error(l->store.arg));
		free(encoded);
	}
	grpc_slice_unref(slice);
}

/* A packed LogResponse, as a slice the caller must unref. */
static int
pack_answer(bool stored, const char *message, grpc_slice *slice)
{
	void	*data;
	size_t	 len;

	if ((data = response_pack(stored, message, &len)) == NULL)
		return (-1);
	*slice = grpc_slice_from_copied_buffer(data, len);
	free(data);
	return (0);
}

static int
answer_call(struct call *c)
{
	grpc_op		 ops[4];
	grpc_slice	 slice;

	/* Every stored call gets the same answer, packed once. */
	if (c->stored)
		slice = grpc_slice_ref(c->listener->stored_answer);
	else if (pack_answer(false, c->reason, &slice) == -1)
		return (-1);
	c->response = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);

	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->response;
	ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
	ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[3].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = CALL_ANSWERING;
	if (grpc_call_start_batch(c->call, ops, 4, c, NULL) != GRPC_CALL_OK)
		return (-1);
	return (0);
}

/*
 * The group's records are appended to the spool: make them durable with one
 * commit, then answer each call.
 */
static void
commit_group(struct listener *l)
{
	struct call	*c, *next;
	bool		 synced = true;

	if (STAILQ_EMPTY(&l->group))
		return;
	STAILQ_FOREACH(c, &l->group, group_entry)
		if (c->stored)
			break;
	if (c != NULL && l->store.commit(l->store.arg) == -1) {
		synced = false;
		log_event(LEVEL_ERROR, "spool_error", "{s:s}", "error",
		    l->store.error(l->store.arg));
	}
	STAILQ_FOREACH_SAFE(c, &l->group, group_entry, next) {
		if (c->stored && !synced) {
			c->stored = false;
			cause_set(c->reason, 0, "storage failed: %s",
			    l->store.error(l->store.arg));
		}
		if (c->stored)
			l->counts.stored++;
		else {
			l->counts.refused++;
			log_event(LEVEL_WARN, "log_refused", "{s:s}", "reason",
			    c->reason);
		}
		if (answer_call(c) == -1) {
			log_event(LEVEL_ERROR, "grpc_error", "{s:s}", "call",
			    "start_batch");
			release_call(c);
			if (!l->closing)
				request_call(l, c);
		}
	}
	STAILQ_INIT(&l->group);
	l->group_size = 0;
	/* After a failed commit too: the next goes to a new journal. */
	l->store.roll(l->store.arg);
}

static void
handle_event(struct listener *l, grpc_event *event)
{
	struct call	*c = event->tag;

	if (event->tag == &l->shutdown_tag) {
		l->closed = true;
		return;
	}
	if (c->state == CALL_WAITING) {
		if (!event->success) {
			/* The server is shutting down: no call came. */
			release_call(c);
			return;
		}
		c->state = CALL_STORING;
		store_call(l, c);
		STAILQ_INSERT_TAIL(&l->group, c, group_entry);
		l->group_size++;
		return;
	}
	release_call(c);
	if (!l->closing)
		request_call(l, c);
}

static gpr_timespec
after_ms(int64_t ms)
{
	return (gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis(ms, GPR_TIMESPAN)));
}

/*
 * Wait up to timeout_ms for calls, then take every event already queued
 * as one group. Answers go out in arrival order within the group only as
 * far as the SDK can tell: each call has its own connection.
 */
int
listener_poll(struct listener *l, int64_t timeout_ms)
{
	grpc_event	event;

	event = grpc_completion_queue_next(l->queue, after_ms(timeout_ms),
	    NULL);
	while (event.type == GRPC_OP_COMPLETE) {
		handle_event(l, &event);
		if (l->group_size >= GROUP_MAX)
			commit_group(l);
		event = grpc_completion_queue_next(l->queue,
		    gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
	}
	commit_group(l);
	return (event.type == GRPC_QUEUE_SHUTDOWN ? -1 : 0);
}

/*
 * Bind the anchor name in the working directory, DIR: gRPC takes a path,
 * and a relative one is resolved from the directory opened once, not by
 * walking to DIR again. The umask gives the socket its mode as it is
 * made: nothing changes a mode by name afterwards.
 */
static int
bind_socket(struct listener *l, const struct listener_config *config)
{
	grpc_server_credentials	*credentials;
	struct stat		 sb;
	mode_t			 saved;
	int			 port;

	if (unlinkat(config->dirfd, SOCKET_ANCHOR_NAME, 0) == -1 &&
	    errno != ENOENT)
		return (-1);
	credentials = grpc_insecure_server_credentials_create();
	saved = umask(~config->socket_mode & 0777);
	port = grpc_server_add_http2_port(l->server, "unix:"
	    SOCKET_ANCHOR_NAME, credentials);
	umask(saved);
	grpc_server_credentials_release(credentials);
	if (port == 0) {
		errno = EADDRNOTAVAIL;
		return (-1);
	}
	/* What was bound there must be this run's socket, and nothing else. */
	if (fstatat(config->dirfd, SOCKET_ANCHOR_NAME, &sb,
	    AT_SYMLINK_NOFOLLOW) == -1)
		return (-1);
	if (!S_ISSOCK(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 0777) != (config->socket_mode & 0777)) {
		errno = EPERM;
		return (-1);
	}
	return (0);
}

/* Give the served socket its public name: a hard link to the anchor. */
static int
link_socket(struct listener *l)
{
	if (unlinkat(l->dirfd, SOCKET_NAME, 0) == -1 && errno != ENOENT)
		return (-1);
	return (linkat(l->dirfd, SOCKET_ANCHOR_NAME, l->dirfd, SOCKET_NAME,
	    0));
}

/*
 * The SDK deletes DIR/data-nadhi-agent.sock before it starts an echopost;
 * when one is already serving, that would leave it unreachable. The socket
 * stays bound under the anchor name, so its public name can be given back.
 */
void
listener_keep_socket(struct listener *l)
{
	struct stat	sb;

	if (fstatat(l->dirfd, SOCKET_NAME, &sb, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT)
		return;
	if (linkat(l->dirfd, SOCKET_ANCHOR_NAME, l->dirfd, SOCKET_NAME, 0) ==
	    -1)
		log_event(LEVEL_ERROR, "socket_error", "{s:s, s:s}", "path",
		    SOCKET_NAME, "error", strerror(errno));
	else
		log_event(LEVEL_WARN, "socket_restored", "{s:s}", "path",
		    SOCKET_NAME);
}

/*
 * A run that holds DIR's lock and does not serve (--replay-only) removes
 * the names a killed run left: while DIR/data-nadhi-agent.sock is there,
 * the SDK connects to it, fails, and never starts an echopost again.
 */
void
listener_remove_stale(int dirfd)
{
	static const char *const names[] = { SOCKET_NAME, SOCKET_ANCHOR_NAME };
	struct stat	sb;
	size_t		i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (fstatat(dirfd, names[i], &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISSOCK(sb.st_mode))
			continue;
		if (unlinkat(dirfd, names[i], 0) == -1)
			log_event(LEVEL_WARN, "socket_error", "{s:s, s:s}",
			    "path", names[i], "error", strerror(errno));
		else
			log_event(LEVEL_WARN, "stale_socket_removed", "{s:s}",
			    "path", names[i]);
	}
}

/*
 * The socket is bound under the anchor name and linked to its public name
 * once the server is started, so the SDK never sees a socket that is not
 * served, and a stale socket of a dead run is replaced at once.
 */
static int
start_server(struct listener *l, const struct listener_config *config)
{
	grpc_arg		arg;
	grpc_channel_args	args;
	int			i;

	arg.type = GRPC_ARG_INTEGER;
	arg.key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = (int)config->max_message_size;
	args.num_args = 1;
	args.args = &arg;
	if ((l->queue = grpc_completion_queue_create_for_next(NULL)) == NULL ||
	    (l->server = grpc_server_create(&args, NULL)) == NULL)
		return (-1);
	l->method = grpc_server_register_method(l->server, SENDLOG_METHOD,
	    NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	if (l->method == NULL)
		return (-1);
	grpc_server_register_completion_queue(l->server, l->queue, NULL);
	if (bind_socket(l, config) == -1)
		return (-1);
	grpc_server_start(l->server);
	for (i = 0; i < CALL_SLOTS; i++) {
		l->slots[i].listener = l;
		if (request_call(l, &l->slots[i]) == -1)
			return (-1);
	}
	return (link_socket(l));
}

/* A listener serving on the socket, or NULL and why. */
struct listener *
listener_start(const struct listener_config *config,
    const struct store *store, char cause[CAUSE_SIZE])
{
	struct listener	*l;

	if ((l = calloc(1, sizeof *l)) == NULL) {
		cause_set(cause, 0, "%s", strerror(errno));
		return (NULL);
	}
	STAILQ_INIT(&l->group);
	gpr_set_log_function(grpc_log);
	grpc_init();
	l->store = *store;
	l->dirfd = config->dirfd;
	if (pack_answer(true, "stored", &l->stored_answer) == -1 ||
	    start_server(l, config) == -1) {
		cause_set(cause, 0, "%s", strerror(errno));
		listener_close(l, NULL);
		return (NULL);
	}
	return (l);
}

static void
unlink_socket(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) == -1 && errno != ENOENT)
		log_event(LEVEL_WARN, "socket_error", "{s:s, s:s}", "path",
		    name, "error", strerror(errno));
}

/*
 * Stop listening: the socket goes first so that no new caller finds it,
 * then the calls in flight are stored and answered before the server goes.
 */
void
listener_close(struct listener *l, struct listener_counts *counts)
{
	int64_t	deadline;
	bool	cancelled = false;

	if (l == NULL)
		return;
	unlink_socket(l->dirfd, SOCKET_NAME);
	unlink_socket(l->dirfd, SOCKET_ANCHOR_NAME);
	if (l->server != NULL) {
		l->closing = true;
		grpc_server_shutdown_and_notify(l->server, l->queue,
		    &l->shutdown_tag);
		deadline = clock_monotonic_ms() + CLOSE_GRACE_MS;
		while (!l->closed) {
			listener_poll(l, 100);
			if (!cancelled && clock_monotonic_ms() > deadline) {
				grpc_server_cancel_all_calls(l->server);
				cancelled = true;
			}
		}
		grpc_server_destroy(l->server);
	}
	if (l->queue != NULL) {
		grpc_completion_queue_shutdown(l->queue);
		while (grpc_completion_queue_next(l->queue,
		    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
		    GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(l->queue);
	}
	grpc_slice_unref(l->stored_answer);
	grpc_shutdown();
	if (counts != NULL)
		*counts = l->counts;
	free(l);
}
