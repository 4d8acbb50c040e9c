/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * util.c: messages, clocks and their text, whole writes, paths under DIR,
 * checksums, header values.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "util.h"

/*
 * The one way a message for the admin is built (echopost.h): fmt, then
 * ": " and strerror(error) unless error is 0. EBADMSG, the bottom layer's
 * word for bytes that do not check out, reads "damaged". The reason is
 * kept whole, the text before it cut if it must be; errno is kept, for
 * callers that go on to look at it.
 */
void
cause_set(char cause[CAUSE_SIZE], int error, const char *fmt, ...)
{
	va_list		 ap;
	const char	*reason;
	size_t		 room = CAUSE_SIZE;
	int		 saved = errno;

	reason = error == EBADMSG ? "damaged" : strerror(error);
	if (error != 0 && strlen(reason) + 3 < room)
		room -= strlen(reason) + 2;
	va_start(ap, fmt);
	if (vsnprintf(cause, room, fmt, ap) < 0)
		strlcpy(cause, fmt, room);
	va_end(ap);
	if (error != 0) {
		strlcat(cause, ": ", CAUSE_SIZE);
		strlcat(cause, reason, CAUSE_SIZE);
	}
	errno = saved;
}

int64_t
clock_realtime_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

int64_t
clock_monotonic_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
format_time(int64_t us, char buf[TIME_BUFSIZE])
{
	struct tm	tm;
	time_t		seconds;
	size_t		n;

	seconds = (time_t)(us / 1000000);
	if (gmtime_r(&seconds, &tm) == NULL) {
		strcpy(buf, "1970-01-01T00:00:00.000Z");
		return;
	}
	n = strftime(buf, TIME_BUFSIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, TIME_BUFSIZE - n, ".%03dZ",
	    (int)((us % 1000000) / 1000));
}

/* Write every byte, going on after a signal or a short write. */
int
write_all(int fd, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return (-1);
		p += n;
		len -= (size_t)n;
	}
	return (0);
}

/* An errno a later try may not meet: an I/O error, a full table. */
bool
transient_error(int error)
{
	return (error == EIO || error == EMFILE || error == ENFILE ||
	    error == ENOMEM || error == EAGAIN || error == EINTR);
}

/* DIR/NAME in buf: 0, or -1 and ENAMETOOLONG if it does not fit. */
int
dir_file(char buf[PATH_MAX], const char *dir, const char *name)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

/* CRC-32 (zlib's) of len bytes, going on from crc: 0 to begin. */
uint32_t
checksum(uint32_t crc, const void *data, size_t len)
{
	return ((uint32_t)crc32_z(crc, data, len));
}

/* Sleep ms milliseconds, a signal's interruption included. */
void
delay_ms(int64_t ms)
{
	struct timespec	wait, left;

	wait.tv_sec = ms / 1000;
	wait.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&wait, &left) == -1 && errno == EINTR)
		wait = left;
}

/* Can text be an HTTP header's value (an API key): no control bytes? */
bool
header_safe(const char *text)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return (false);
	return (true);
}

/* Record numbers "N" or "N-M", M >= N: 0 with the range, or -1. */
int
parse_range(const char *text, uint64_t *first, uint64_t *last)
{
	char		*end;
	uintmax_t	 a, b;

	if (*text < '0' || *text > '9')
		return (-1);
	errno = 0;
	a = b = strtoumax(text, &end, 10);
	if (*end == '-' && end[1] >= '0' && end[1] <= '9')
		b = strtoumax(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || b < a || b >= UINT64_MAX)
		return (-1);
	*first = a;
	*last = b;
	return (0);
}
