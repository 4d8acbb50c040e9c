/*
 * dir.h: DIR itself: made, checked, and held by one run at a time.
 *
 * DIR holds the logs, the API keys and the socket the SDK trusts. Another
 * local user must not be able to turn it against echopost, nor echopost
 * against another user: DIR belongs to the user echopost runs as (root
 * takes on the identity of DIR's owner), is not writable by all, and no
 * symbolic link in it is followed.
 */
#ifndef DIR_H
#define DIR_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct dir_check {
	char	 path[PATH_MAX];	/* DIR, resolved */
	bool	 group_writable;	/* worth a warning, not a refusal */
	bool	 became_owner;		/* was root, now DIR's owner */
	char	 error[PATH_MAX + 128];	/* why it was refused */
};

struct dir_lock;

int	 dir_prepare(const char *, bool, struct dir_check *);
int	 dir_lock(struct dir_lock **, const char *, pid_t *);
void	 dir_unlock(struct dir_lock *);

#endif
