/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * http.h: the HTTP client the forwarder talks to the server with.
 *
 * It owns the libcurl handles: one multi handle that carries up to
 * "slots" POST /log requests at once (HTTP/2 streams on one connection
 * where the server offers it, keep-alive HTTP/1.1 connections otherwise),
 * the health check, the port probe, and the classes an answer falls in.
 * One thread uses a client; http_stop is the one call any thread may
 * make. What it needs of the options (the health URL, the CA
 * certificates, --timeout, --replay-concurrency slots) it reads from
 * them, for as long as the client is open.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "echopost.h"
#include "options.h"

enum delivery {
	DELIVERY_DONE,		/* 2xx: delivered */
	DELIVERY_REJECTED,	/* this record refused for good: failure log */
	DELIVERY_REFUSED,	/* 3xx, 401, 403, 404, 405, 410: the record,
				   or the endpoint or key if all get it */
	DELIVERY_BUSY,		/* 429, 503: the server asks for less */
	DELIVERY_RETRY		/* no answer, 408, other 5xx: again later */
};

/* What came back for one POST; body and reason last until the next. */
struct http_answer {
	void		*tag;		/* as given to http_post */
	enum delivery	 outcome;
	long		 code;		/* 0: no answer */
	bool		 timed_out;
	int64_t		 retry_after_ms; /* 0: none asked for */
	int64_t		 round_trip_us;
	const char	*body;		/* its start, for the failure log */
	size_t		 body_len;
	const char	*reason;	/* why there was no answer */
};

struct health {
	long		 code;		/* 0: no answer */
	bool		 refused;	/* nobody listens at the port */
	const char	*reason;	/* why there was no answer */
};

struct http;

struct http	*http_open(const struct options *, char [CAUSE_SIZE]);
void		 http_close(struct http *);
unsigned int	 http_in_flight(const struct http *);
int		 http_post(struct http *, void *, const char *, const char *,
		    const char *);
int		 http_kick(struct http *);
int		 http_wait(struct http *, int64_t);
int		 http_answer(struct http *, struct http_answer *);
void		 http_stop(struct http *);
bool		 http_check_health(struct http *, struct health *);
bool		 http_listening(struct http *, int64_t);

bool		 probe_health(const struct options *, const char *, long *,
		    char [CURL_ERROR_SIZE]);
enum delivery	 classify_answer(CURLcode, long);
bool		 health_answer_ok(CURLcode, long);
char		*delivery_url(const char *);

#endif
