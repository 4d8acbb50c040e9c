/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * log.c: the JSON event log, one object per line.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

static const char *level_names[] = { "error", "warn", "info", "debug" };
/* sd-daemon(3) prefixes: err, warning, info, debug. */
static const char *journal_prefixes[] = { "<3>", "<4>", "<6>", "<7>" };

static pthread_mutex_t	 log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level	 log_level = LEVEL_INFO;
static int		 log_file = -1;

int
log_level_parse(const char *name, enum log_level *level)
{
	size_t	i;

	for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return (0);
		}
	}
	return (-1);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

bool
log_enabled(enum log_level level)
{
	return (level <= log_level);
}

/*
 * Is standard output the systemd journal? JOURNAL_STREAM names its device
 * and inode when a service's output goes there; then each line begins
 * with its priority, and the journal files it at that level.
 */
static bool
stdout_is_journal(void)
{
	static int	 answer = -1;
	struct stat	 sb;
	const char	*stream;
	unsigned long long dev, ino;

	if (answer != -1)
		return (answer);
	answer = (stream = getenv("JOURNAL_STREAM")) != NULL &&
	    sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDOUT_FILENO, &sb) == 0 &&
	    (unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino;
	return (answer);
}

/* Events go to fd too from now on; log_close_file() closes it. */
void
log_set_file(int fd)
{
	pthread_mutex_lock(&log_lock);
	log_file = fd;
	pthread_mutex_unlock(&log_lock);
}

void
log_close_file(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file != -1)
		close(log_file);
	log_file = -1;
	pthread_mutex_unlock(&log_lock);
}

void
log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	json_t		*line, *fields;
	json_error_t	 error;
	va_list		 ap;
	char		 now[TIME_BUFSIZE], *text;
	size_t		 len;
	size_t		 n;

	if (!log_enabled(level))
		return;
	format_time(clock_realtime_us(), now);
	line = json_pack("{s:s, s:s, s:s}", "time", now, "event", event,
	    "level", level_names[level]);
	if (line == NULL)
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		fields = json_vpack_ex(&error, 0, fmt, ap);
		va_end(ap);
		if (fields != NULL)
			json_object_update(line, fields);
		else
			json_object_set_new(line, "log_error",
			    json_string(error.text));
		json_decref(fields);
	}
	len = json_dumpb(line, NULL, 0, JSON_COMPACT);
	text = malloc(len + 1);
	if (text == NULL) {
		json_decref(line);
		return;
	}
	n = json_dumpb(line, text, len, JSON_COMPACT);
	json_decref(line);
	if (len == 0 || n != len) {
		free(text);
		return;
	}
	text[len] = '\n';

	/* A failed write of the event log has nowhere left to be reported. */
	pthread_mutex_lock(&log_lock);
	if (stdout_is_journal())
		(void)write_all(STDOUT_FILENO, journal_prefixes[level], 3);
	(void)write_all(STDOUT_FILENO, text, len + 1);
	if (log_file != -1)
		(void)write_all(log_file, text, len + 1);
	pthread_mutex_unlock(&log_lock);
	free(text);
}

