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

/* "2026-11-28T12:41:13.123Z" and its terminating NUL. */
#define TIME_BUFSIZE 32

int	 log_level_parse(const char *, enum log_level *);
void	 log_set_level(enum log_level);
bool	 log_enabled(enum log_level);
void	 log_set_file(int);
void	 log_close_file(void);
void	 log_event(enum log_level, const char *, const char *, ...);
int	 write_all(int, const void *, size_t);

int64_t	 clock_realtime_us(void);
int64_t	 clock_monotonic_ms(void);
void	 format_time(int64_t, char [TIME_BUFSIZE]);

#endif
