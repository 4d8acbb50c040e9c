/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * files.h: what every module that keeps files under DIR needs to make them
 * durable and to find them again.
 *
 * Every file under DIR is reached relative to a descriptor of DIR itself,
 * never by a path that could be swapped under us, and none is followed if
 * it is a symbolic link, and none is used unless file_trusted() says so.
 *
 * The rule for power loss, kept by every caller: a file's data is synced
 * before its name is made (link, rename); the directory is synced after a
 * name is made or removed when a later step relies on it.
 */
#ifndef FILES_H
#define FILES_H

#include <sys/types.h>

#include <dirent.h>

int	 publish_file(int, const char *, const char *);
int	 file_trusted(int, nlink_t);
int	 file_open(int, const char *, int, nlink_t);
DIR	*list_dir(int);

#endif
