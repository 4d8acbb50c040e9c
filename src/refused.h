/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * refused.h: DIR/echopost.refused, written by a run (session.c) while the
 * server refuses every delivery with one code, read by --status
 * (admin.c). One line of JSON:
 *
 *	{"code":404,"url":"http://host/path","since":"2026-12-06T03:07:55.123Z"}
 *
 * code is the HTTP status every delivery got, url where they went, since
 * when the first of them was refused (format_time). The file stays after
 * a run that gave up, and goes when a delivery passes.
 */
#ifndef REFUSED_H
#define REFUSED_H

#include <stddef.h>

#include <jansson.h>

struct refused {
	int		 code;
	const char	*url;
	const char	*since;
};

char	*refused_text(const struct refused *, size_t *);
int	 refused_read(json_t *, struct refused *);

#endif
