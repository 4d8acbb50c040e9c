/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * util.h: small things every module needs: messages, clocks and their
 * text, whole writes, paths under DIR, checksums, header values, record
 * numbers.
 */
#ifndef UTIL_H
#define UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "echopost.h"

/* "2026-11-28T12:41:13.123Z" and its terminating NUL. */
#define TIME_BUFSIZE 32

void	 cause_set(char [CAUSE_SIZE], int, const char *, ...)
	    __attribute__((__format__(__printf__, 3, 4)));
int64_t	 clock_realtime_us(void);
int64_t	 clock_monotonic_ms(void);
void	 delay_ms(int64_t);
void	 format_time(int64_t, char [TIME_BUFSIZE]);
int	 write_all(int, const void *, size_t);
bool	 transient_error(int);
int	 dir_file(char [PATH_MAX], const char *, const char *);
uint32_t checksum(uint32_t, const void *, size_t);
bool	 header_safe(const char *);
int	 parse_range(const char *, uint64_t *, uint64_t *);

#endif
