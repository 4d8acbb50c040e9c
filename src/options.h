/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * options.h: the command line.
 *
 * Go-flag syntax as the SDK uses it (-name value), and GNU forms
 * (--name value, --name=value, -name=value).
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "log.h"

#define DEFAULT_DIR		"./.datanadhi"
#define DEFAULT_HEALTH_URL	"http://data-nadhi-server:5000"
#define DEFAULT_SOCKET_MODE	0600
#define DEFAULT_HEALTH_MS	500
/*
 * The SDK waits 10 s for the same server: a shorter limit would resend,
 * as duplicates, logs that a server slower than ours but quick enough for
 * the SDK had accepted.
 */
#define DEFAULT_TIMEOUT_MS	10000
#define DEFAULT_MESSAGE_SIZE	(1024 * 1024)
#define DEFAULT_KEEP_SESSIONS	20
/*
 * Sixteen requests in flight take a server 20 ms away to 800 logs a
 * second, past what one host's SDK sends, while a server on HTTP/1.1
 * sees no more connections from us than from a few browsers.
 */
#define DEFAULT_CONCURRENCY	16
#define MAX_CONCURRENCY		256
#define MAX_CONCURRENCY_TEXT	"256"
#define DEFAULT_REFUSED_TIMEOUT_MS (10 * 60 * 1000)
#define API_KEY_ENV		"DATANADHI_API_KEY"
/* For the test suite: journals this long, so that rotation comes soon. */
#define JOURNAL_SIZE_ENV	"ECHOPOST_TEST_JOURNAL_SIZE"

enum mode {
	MODE_SERVE,		/* the SDK's helper: listen, store, replay */
	MODE_REPLAY_ONLY,	/* replay the spool, no socket */
	MODE_STATUS,		/* report on DIR and the server */
	MODE_DUMP,		/* print the spool as JSON lines */
	MODE_GIVE_UP		/* records to the failure log, unsent */
};

struct options {
	enum mode	 mode;
	bool		 json;		/* --status as one JSON object */
	bool		 count;		/* --dump prints how many */
	bool		 seq_given;	/* --dump prints first to last */
	uint64_t	 first_seq;	/* --seq, --give-up */
	uint64_t	 last_seq;
	char		*dir;
	bool		 dir_given;	/* -datanadhi was on the command line */
	char		*api_key;
	char		*health_url;
	bool		 health_url_given;
	char		*shown_url;	/* health_url as printed */
	char		*cacert;	/* NULL: libcurl's own */
	char		*capath;
	mode_t		 socket_mode;
	int64_t		 health_interval_ms;
	int64_t		 timeout_ms;
	int64_t		 max_message_size;
	int64_t		 max_spool_size;	/* 0: none; -1: the default */
	int64_t		 journal_size;	/* 0: the spool's own */
	enum log_level	 log_level;
	int		 keep_sessions;
	unsigned int	 concurrency;	/* requests in flight at most */
	int64_t		 refused_timeout_ms;
};

enum options_result {
	OPTIONS_RUN,		/* go on with the options filled in */
	OPTIONS_DONE,		/* --help or --version was printed: exit 0 */
	OPTIONS_BAD		/* a message is on err: exit EX_USAGE */
};

enum options_result	 options_parse(struct options *, int, char *[],
			    FILE *, FILE *);
void			 options_free(struct options *);

/* option_values.c */
const char		*duration_problem(const char *, int64_t *);
const char		*size_problem(const char *, int64_t *);
const char		*url_problem(const char *);
int			 parse_duration_ms(const char *, int64_t *);
int			 parse_size(const char *, int64_t *);

#endif
