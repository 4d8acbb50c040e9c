/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * pausepoint.c: an LD_PRELOAD library for the security tests, to hold a
 * process at one call, so that a test can change the file system under it
 * (rename DIR away, put a link in its place) at a chosen moment instead of
 * racing it.
 *
 *	ECHOPOST_PAUSE_ON	the call to pause at: bind, listen, chmod,
 *				fchmod, fchmodat, link, linkat, unlink,
 *				unlinkat, rename or renameat. Unset: the
 *				library does nothing.
 *	ECHOPOST_PAUSE_READY	a file the library creates (mode 0666) when
 *				the first such call, over all threads, is
 *				made: the process is then waiting.
 *	ECHOPOST_PAUSE_GO	a file the test creates once it is done; the
 *				call then goes on to the real function. The
 *				library waits for it 20 s at most, then goes
 *				on regardless, so that nothing hangs.
 *
 * Only the first call pauses; every other call, and every call when the
 * two files are not named, goes straight to the real function.
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

#define WAIT_MS		20000
#define STEP_MS		10

/* Copies: setproctitle(3) may write over the environment's strings. */
static char	pause_on[32];
static char	ready_path[4096];
static char	go_path[4096];
static int	paused;		/* set, atomically, by the first call */

__attribute__((constructor)) static void
setup(void)
{
	const char	*on = getenv("ECHOPOST_PAUSE_ON");
	const char	*ready = getenv("ECHOPOST_PAUSE_READY");
	const char	*go = getenv("ECHOPOST_PAUSE_GO");

	if (on == NULL || ready == NULL || go == NULL ||
	    strlen(on) >= sizeof pause_on ||
	    strlen(ready) >= sizeof ready_path ||
	    strlen(go) >= sizeof go_path)
		return;
	strcpy(pause_on, on);
	strcpy(ready_path, ready);
	strcpy(go_path, go);
}

/* At the first call of name: say so, and wait for the test's go. */
static void
pause_at(const char *name)
{
	struct timespec	step = { 0, STEP_MS * 1000000L };
	struct stat	sb;
	int		fd, waited;

	if (pause_on[0] == '\0' || strcmp(name, pause_on) != 0 ||
	    __atomic_exchange_n(&paused, 1, __ATOMIC_SEQ_CST) != 0)
		return;
	/* Raw syscalls: nothing of this library's own is called. */
	fd = (int)syscall(SYS_openat, AT_FDCWD, ready_path,
	    O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd != -1)
		syscall(SYS_close, fd);
	for (waited = 0; waited < WAIT_MS; waited += STEP_MS) {
		if (syscall(SYS_newfstatat, AT_FDCWD, go_path, &sb, 0) == 0)
			return;
		nanosleep(&step, NULL);
	}
}

int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	REAL(bind);
	pause_at("bind");
	return (real(fd, addr, len));
}

int
listen(int fd, int backlog)
{
	REAL(listen);
	pause_at("listen");
	return (real(fd, backlog));
}

int
chmod(const char *path, mode_t mode)
{
	REAL(chmod);
	pause_at("chmod");
	return (real(path, mode));
}

int
fchmod(int fd, mode_t mode)
{
	REAL(fchmod);
	pause_at("fchmod");
	return (real(fd, mode));
}

int
fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	REAL(fchmodat);
	pause_at("fchmodat");
	return (real(dirfd, path, mode, flags));
}

int
link(const char *from, const char *to)
{
	REAL(link);
	pause_at("link");
	return (real(from, to));
}

int
linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	REAL(linkat);
	pause_at("linkat");
	return (real(fromfd, from, tofd, to, flags));
}

int
unlink(const char *path)
{
	REAL(unlink);
	pause_at("unlink");
	return (real(path));
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);
	pause_at("unlinkat");
	return (real(dirfd, path, flags));
}

int
rename(const char *from, const char *to)
{
	REAL(rename);
	pause_at("rename");
	return (real(from, to));
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(renameat);
	pause_at("renameat");
	return (real(fromfd, from, tofd, to));
}
