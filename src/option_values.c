/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * option_values.c: the values options take, as a person types them:
 * durations, sizes and URLs, parsed, or what is wrong with them, said so
 * that the message names the fault.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "options.h"

#define DAY_MS	(24LL * 3600 * 1000)

/*
 * A number with an optional unit, "1.5s", "250ms", "2m", "3" (seconds), of
 * a day at most: NULL with it in *ms, or what is wrong with it.
 */
const char *
duration_problem(const char *text, int64_t *ms)
{
	char	*end;
	double	 value, scale;

	errno = 0;
	value = strtod(text, &end);
	if (end == text || errno != 0 || !(value >= 0))
		return ("not a duration such as 250ms, 5s or 1m");
	if (strcmp(end, "ms") == 0)
		scale = 1;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		scale = 1000;
	else if (strcmp(end, "m") == 0)
		scale = 60 * 1000;
	else
		return ("unknown unit: use ms, s or m (1440m is a day)");
	value *= scale;
	if (value > DAY_MS)
		return ("more than a day (1440m)");
	*ms = (int64_t)value;
	return (NULL);
}

int
parse_duration_ms(const char *text, int64_t *ms)
{
	return (duration_problem(text, ms) == NULL ? 0 : -1);
}

/*
 * A byte count with an optional k, M or G (powers of 1024): NULL with it
 * in *bytes, or what is wrong with it.
 */
const char *
size_problem(const char *text, int64_t *bytes)
{
	char		*end;
	long long	 value;
	int		 shift;

	if (!isdigit((unsigned char)*text))
		return ("not a size such as 4096, 64k, 8M or 2G");
	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno != 0)
		return ("too large");
	switch (*end) {
	case '\0':
		shift = 0;
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	default:
		return ("unknown unit: use k, M or G");
	}
	if (*end != '\0' && end[1] != '\0')
		return ("unknown unit: use k, M or G");
	if (value > (INT64_MAX >> shift))
		return ("too large");
	*bytes = (int64_t)value << shift;
	return (NULL);
}

int
parse_size(const char *text, int64_t *bytes)
{
	return (size_problem(text, bytes) == NULL ? 0 : -1);
}

/* NULL if url is an http:// or https:// URL, else what is wrong with it. */
const char *
url_problem(const char *url)
{
	CURLU		*handle;
	CURLUcode	 code;
	char		*scheme = NULL;
	const char	*problem = NULL;

	if ((handle = curl_url()) == NULL)
		return (strerror(ENOMEM));
	if ((code = curl_url_set(handle, CURLUPART_URL, url, 0)) != CURLUE_OK)
		problem = curl_url_strerror(code);
	else if (curl_url_get(handle, CURLUPART_SCHEME, &scheme, 0) !=
	    CURLUE_OK || (strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0))
		problem = "not an http:// or https:// URL";
	curl_free(scheme);
	curl_url_cleanup(handle);
	return (problem);
}
