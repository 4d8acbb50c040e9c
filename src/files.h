/*
 * files.h: what every module that keeps files under DIR needs to make them
 * durable and to find them again.
 *
 * The rule for power loss, kept by every caller: a file's data is synced
 * before its name is made (rename, link); the directory is synced after a
 * name is made or removed when a later step relies on it.
 */
#ifndef FILES_H
#define FILES_H

#include <dirent.h>
#include <limits.h>

int	 sync_parent(const char *);
int	 publish_file(const char *, const char *);
DIR	*open_parent(const char *, char [PATH_MAX], const char **);

#endif
