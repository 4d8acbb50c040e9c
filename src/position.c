/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * position.c: the file that says where delivery has come to.
 *
 * Layout: two slots of SLOT_SIZE bytes, all numbers big-endian:
 *	"EPP1", 4 zero bytes, counter (8), head (8), CRC-32 of the 24
 *	bytes before it (4), 4 zero bytes
 * The slot with a valid CRC and the higher counter holds the head. A save
 * writes the other slot and syncs it; the older slot stays whole until the
 * next save, so a write cut short by a crash can only lose the newest one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "position.h"
#include "util.h"

#define MAGIC		"EPP1"
#define SLOT_SIZE	32
#define SLOT_CRC	24

struct position {
	int		 fd;
	uint64_t	 counter;	/* of the newest slot */
	uint64_t	 head;		/* as saved in it */
};

/* A slot's counter and head; false if it is not whole. */
static bool
slot_decode(const unsigned char *slot, uint64_t *counter, uint64_t *head)
{
	if (memcmp(slot, MAGIC, 4) != 0 ||
	    be32dec(slot + SLOT_CRC) != checksum(0, slot, SLOT_CRC))
		return (false);
	*counter = be64dec(slot + 8);
	*head = be64dec(slot + 16);
	return (true);
}

/* The newest whole slot of the file at fd: 1, or 0 when there is none. */
static int
newest_slot(int fd, uint64_t *counter, uint64_t *head)
{
	unsigned char	buf[2 * SLOT_SIZE];
	uint64_t	c, h;
	ssize_t		n;
	int		i, found = 0;

	if ((n = pread(fd, buf, sizeof buf, 0)) == -1)
		return (-1);
	for (i = 0; (i + 1) * SLOT_SIZE <= n; i++)
		if (slot_decode(buf + i * SLOT_SIZE, &c, &h) &&
		    (!found || c > *counter)) {
			*counter = c;
			*head = h;
			found = 1;
		}
	return (found);
}

/*
 * Open the file name in the directory dirfd, creating it if need be.
 * Returns 1 with the head saved last in *head, 0 when none was saved yet
 * (or none is whole), -1 on error.
 */
int
position_open(struct position **pp, int dirfd, const char *name,
    uint64_t *head)
{
	struct position	*p;
	struct stat	 sb;
	int		 found, saved;

	*pp = NULL;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return (-1);
	p->fd = file_open(dirfd, name, O_RDWR | O_CREAT, 1);
	if (p->fd == -1 || fstat(p->fd, &sb) == -1 ||
	    (sb.st_size == 0 && fsync(dirfd) == -1) ||
	    (found = newest_slot(p->fd, &p->counter, &p->head)) == -1) {
		saved = errno;
		position_close(p);
		errno = saved;
		return (-1);
	}
	if (found)
		*head = p->head;
	*pp = p;
	return (found);
}

/* Save head, durably: it is the head after a crash once this returns 0. */
int
position_save(struct position *p, uint64_t head)
{
	unsigned char	slot[SLOT_SIZE];
	uint64_t	counter = p->counter + 1;

	if (head == p->head && p->counter > 0)
		return (0);
	memset(slot, 0, sizeof slot);
	memcpy(slot, MAGIC, 4);
	be64enc(slot + 8, counter);
	be64enc(slot + 16, head);
	be32enc(slot + SLOT_CRC, checksum(0, slot, SLOT_CRC));
	if (pwrite(p->fd, slot, sizeof slot, (off_t)(counter % 2) *
	    SLOT_SIZE) != (ssize_t)sizeof slot || compat_sync_data(p->fd) == -1)
		return (-1);
	p->counter = counter;
	p->head = head;
	return (0);
}

void
position_close(struct position *p)
{
	if (p == NULL)
		return;
	if (p->fd != -1)
		close(p->fd);
	free(p);
}

/* The head saved in the file name, without writing: as position_open. */
int
position_read(int dirfd, const char *name, uint64_t *head)
{
	uint64_t	counter;
	int		fd, found, saved;

	if ((fd = file_open(dirfd, name, O_RDONLY, 1)) == -1)
		return (errno == ENOENT ? 0 : -1);
	found = newest_slot(fd, &counter, head);
	saved = errno;
	close(fd);
	errno = saved;
	return (found);
}
