/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * log.h: the JSON event log.
 *
 * Every event is one line {"time": RFC 3339 UTC, "event": name, ...} on
 * stdout and, once a session is open, in its agent.log too, because the SDK
 * starts echopost with stdout on /dev/null.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LEVEL_ERROR,
	LEVEL_WARN,
	LEVEL_INFO,
	LEVEL_DEBUG
};

int	 log_level_parse(const char *, enum log_level *);
void	 log_set_level(enum log_level);
bool	 log_enabled(enum log_level);
void	 log_set_file(int);
void	 log_close_file(void);
void	 log_event(enum log_level, const char *, const char *, ...);

#endif
