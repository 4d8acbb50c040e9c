/*
 * files.c: durable names for the files under DIR.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

/* A file created or removed in a directory is durable once it is synced. */
int
sync_parent(const char *path)
{
	char	*copy, *slash;
	int	 fd, status = -1, saved;

	if ((copy = strdup(path)) == NULL)
		return (-1);
	if ((slash = strrchr(copy, '/')) != NULL)
		*(slash == copy ? slash + 1 : slash) = '\0';
	fd = open(slash != NULL ? copy : ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (fd != -1) {
		status = fsync(fd);
		saved = errno;
		close(fd);
		errno = saved;
	}
	free(copy);
	return (status);
}

/*
 * Give the synced file at from the name to, durably, never replacing a
 * file already there (EEXIST): link, sync the directory, then drop the
 * old name. A crash in between leaves both names for one file.
 */
int
publish_file(const char *from, const char *to)
{
	if (link(from, to) == -1 || sync_parent(to) == -1)
		return (-1);
	if (unlink(from) == -1)
		return (-1);
	return (0);
}

/* The directory a file is in, opened, and the file's name in it. */
DIR *
open_parent(const char *path, char parent[PATH_MAX], const char **base)
{
	const char	*slash;

	if ((slash = strrchr(path, '/')) == NULL) {
		*base = path;
		strlcpy(parent, ".", PATH_MAX);
	} else {
		*base = slash + 1;
		if ((size_t)(slash - path) >= PATH_MAX) {
			errno = ENAMETOOLONG;
			return (NULL);
		}
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
		if (parent[0] == '\0')
			strlcpy(parent, "/", PATH_MAX);
	}
	return (opendir(parent));
}
