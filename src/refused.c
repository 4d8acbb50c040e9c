/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * refused.c: the one place that spells DIR/echopost.refused's fields.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "refused.h"

#define REFUSED_FORMAT	"{s:i, s:s, s:s}"

/*
 * The file's bytes, *len of them, the last a newline where json_dumps put
 * its NUL; to free. NULL with errno set.
 */
char *
refused_text(const struct refused *r, size_t *len)
{
	json_t	*state;
	char	*text;

	state = json_pack(REFUSED_FORMAT, "code", r->code, "url", r->url,
	    "since", r->since);
	text = state != NULL ? json_dumps(state, JSON_COMPACT) : NULL;
	json_decref(state);
	if (text == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	*len = strlen(text);
	text[(*len)++] = '\n';
	return (text);
}

/* Takes what was read apart: 0, or -1 if it is not such a line. */
int
refused_read(json_t *state, struct refused *r)
{
	return (json_unpack(state, REFUSED_FORMAT, "code", &r->code, "url",
	    &r->url, "since", &r->since) == -1 ? -1 : 0);
}
