/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * admin.h: the admin commands: --status and --dump, read-only views of DIR
 * that are safe beside a running instance, and --give-up, which is not.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include "options.h"

/* Exit status of --status when no instance is running (as LSB's). */
#define EXIT_NOT_RUNNING	3
/* --status: DIR or its pid file cannot be read, so nobody knows. */
#define EXIT_CANNOT_TELL	4
/* --status: no instance runs, and records wait for one (stranded). */
#define EXIT_STRANDED		5

int	 admin_status(const struct options *);
int	 admin_dump(const struct options *);
int	 admin_give_up(const struct options *);

/* admin.c: text a user chose, escaped for a terminal (vis(3)). */
char	*shown(const char *);
void	 warn_shown(const char *, const char *);

#endif
