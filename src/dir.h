/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * dir.h: DIR itself: made, checked, and held by one run at a time.
 *
 * DIR holds the logs, the API keys and the socket the SDK trusts. Another
 * local user must not be able to turn it against echopost, nor echopost
 * against another user: DIR belongs to the user echopost runs as (root
 * takes on the identity of the first user who owns a directory on the way
 * to it), only that user can write it or any directory on the way (a
 * sticky one aside), no symbolic link in it is followed, and after it is
 * opened it is reached through that descriptor only.
 */
#ifndef DIR_H
#define DIR_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "echopost.h"

struct dir_check {
	int	 fd;			/* DIR, open */
	char	 path[PATH_MAX];	/* DIR, as walked, for people */
	bool	 became_owner;		/* was root, now DIR's owner */
	char	 error[CAUSE_SIZE];	/* why it was refused */
};

struct dir_lock;

int	 dir_open(const char *, bool, struct dir_check *);
int	 dir_lock(struct dir_lock **, int, pid_t *);
int	 dir_holder(int, pid_t *);
void	 dir_unlock(struct dir_lock *);

#endif
