/*
 * files.c: durable names for the files under DIR.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "files.h"

/*
 * Give the synced file from the name to, durably, in the directory dirfd,
 * never replacing a file already there (EEXIST): link, sync the directory,
 * then drop the old name. A crash in between leaves both names for one
 * file.
 */
int
publish_file(int dirfd, const char *from, const char *to)
{
	if (linkat(dirfd, from, dirfd, to, 0) == -1 || fsync(dirfd) == -1 ||
	    unlinkat(dirfd, from, 0) == -1)
		return (-1);
	return (0);
}

/* The entries of the directory dirfd, on a descriptor of their own. */
DIR *
list_dir(int dirfd)
{
	DIR	*dir;
	int	 fd, saved;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return (NULL);
	if ((dir = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return (dir);
}
