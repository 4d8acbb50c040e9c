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

/*
 * The values, once parsed; read-only from then on, and passed down as
 * they are.
 */
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
	int64_t		 keep_sessions;
	int64_t		 concurrency;	/* requests in flight at most */
	int64_t		 refused_timeout_ms;
};

/* What an option's value is, and so how it is parsed, checked and kept. */
enum option_kind {
	KIND_TEXT,		/* any text: char * */
	KIND_PATH,		/* a path, not empty: char * */
	KIND_FILE,		/* a readable file: char * */
	KIND_DIRECTORY,		/* a readable, searchable directory: char * */
	KIND_URL,		/* http:// or https://: char * */
	KIND_PERMISSIONS,	/* octal, writable by someone: mode_t */
	KIND_DURATION,		/* 250ms, 5s, 1m; kept in ms: int64_t */
	KIND_SIZE,		/* 4096, 64k, 8M, 2G; kept in bytes: int64_t */
	KIND_COUNT,		/* a whole number: int64_t */
	KIND_LEVEL,		/* a log level: enum log_level */
	KIND_FLAG,		/* no value: bool, set */
	KIND_RANGE,		/* N or N-M: first_seq, last_seq */
	KIND_COMMAND,		/* no value: the command alone */
	KIND_HELP,		/* print this and exit */
	KIND_VERSION
};

#define OPTION_SDK	0x1	/* the SDK's, Go style: -name in --help */
#define OPTION_NO_LIMIT	0x2	/* a size of 0 means no limit */

/*
 * One option: everything said about it, once. From these rows come the
 * getopt table, --help, the checks with their messages, and the defaults.
 */
struct option_row {
	const char	*name;		/* -name, --name, -name=, --name= */
	int		 letter;	/* -h; 0: none */
	enum option_kind kind;
	size_t		 value;		/* offsetof(struct options, ...) */
	size_t		 given;		/* a bool set when given; 0: none, as
					   mode, not a bool, comes first */
	int64_t		 least;		/* in the kind's unit: ms, bytes */
	int64_t		 most;		/* 0: the kind's own (a day) */
	const char	*fallback;	/* a text's default; NULL: none */
	int64_t		 number;	/* a number's; out of bounds: the help
					   says what is done without it */
	const char	*env[2];	/* a text's default from these first */
	enum mode	 command;	/* the command it is, if not MODE_SERVE */
	int		 flags;
	const char	*heading;	/* --help's section, from this row on */
	const char	*meta;		/* the value's name in --help */
	const char	*help;
};

extern const struct option_row option_table[];

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
