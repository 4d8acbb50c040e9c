/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * session.c: the run's files under DIR.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "echopost.h"
#include "files.h"
#include "log.h"
#include "refused.h"
#include "session.h"
#include "util.h"

/*
 * Who may touch what, in the letters of echopost.h: main's thread opens
 * and closes a session; in between, while the forwarder runs, only the
 * forwarder's thread (F) goes through it, and main's reads its path.
 */
struct session {
	char	 dir[PATH_MAX];		/* [I] DIR, as shown */
	char	 path[PATH_MAX];	/* [I] DIR/session-..., as shown */
	char	 name[64];		/* [I] session-... */
	int	 dirfd;			/* [I] of DIR: files are named in it */
	int	 fd;			/* [I] of the session directory */
	int	 success_log;		/* [I] */
	char	*delivered;		/* [F] its lines not written yet */
	size_t	 delivered_len;		/* [F] */
	size_t	 delivered_size;	/* [F] */
	int	 failure_log;		/* [I] */
	bool	 server_down;		/* [F] */
	bool	 published;		/* [F] DIR/echopost.status is ours */
};

/* A file of ours to append to in the directory dirfd. */
static int
open_log(int dirfd, const char *name)
{
	return (file_open(dirfd, name, O_WRONLY | O_CREAT | O_APPEND, 1));
}

/*
 * Two runs may start within one second; they share the directory. Its
 * name can be guessed, so one that is there must be a directory of our
 * own, not a link planted to send the logs elsewhere.
 */
static int
make_session_dir(struct session *s)
{
	struct stat	sb;
	struct tm	tm;
	time_t		now;

	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL || strftime(s->name, sizeof s->name,
	    SESSION_PREFIX "%Y-%m-%dT%H-%M-%SZ", &tm) == 0)
		return (-1);
	if (dir_file(s->path, s->dir, s->name) == -1)
		return (-1);
	if (mkdirat(s->dirfd, s->name, 0700) == -1 && errno != EEXIST)
		return (-1);
	s->fd = openat(s->dirfd, s->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (s->fd == -1 || fstat(s->fd, &sb) == -1)
		return (-1);
	if (sb.st_uid != geteuid()) {
		errno = EPERM;
		return (-1);
	}
	return (0);
}


/*
 * A new session in the directory dirfd (dir, for people), its event log
 * the log's file from now on. Its files' names are synced: the failure
 * log will hold the only copy of records refused for good.
 */
struct session *
session_open(int dirfd, const char *dir, char cause[CAUSE_SIZE])
{
	struct session	*s;
	int		 fd = -1;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		cause_set(cause, 0, "%s", strerror(errno));
		return (NULL);
	}
	s->dirfd = s->fd = s->success_log = s->failure_log = -1;
	strlcpy(s->dir, dir, sizeof s->dir);
	s->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (s->dirfd == -1 || make_session_dir(s) == -1 ||
	    (fd = open_log(s->fd, EVENT_LOG_NAME)) == -1 ||
	    (s->success_log = open_log(s->fd, SUCCESS_LOG_NAME)) == -1 ||
	    (s->failure_log = open_log(s->fd, FAILURE_LOG_NAME)) == -1 ||
	    fsync(s->fd) == -1 || fsync(s->dirfd) == -1) {
		cause_set(cause, 0, "%s", strerror(errno));
		if (fd != -1)
			close(fd);
		session_close(s);
		return (NULL);
	}
	log_set_file(fd);
	return (s);
}

const char *
session_path(const struct session *s)
{
	return (s->path);
}

static int
append_record(int fd, const struct record *r, const char *context)
{
	char	*line;
	int	 status;

	if ((line = record_log_line(r, context)) == NULL)
		return (-1);
	status = write_all(fd, line, strlen(line));
	free(line);
	return (status);
}

/* Room for len more bytes of lines, or -1. */
static int
delivered_room(struct session *s, size_t len)
{
	char	*grown;
	size_t	 size;

	if (s->delivered_len + len <= s->delivered_size)
		return (0);
	size = s->delivered_size > 0 ? s->delivered_size : 4096;
	while (size < s->delivered_len + len)
		size *= 2;
	if ((grown = realloc(s->delivered, size)) == NULL)
		return (-1);
	s->delivered = grown;
	s->delivered_size = size;
	return (0);
}

/*
 * A delivered record's line waits in memory for session_flush, which the
 * forwarder calls before it removes the records it has answers for from
 * the spool: one write for a batch of answers. The success log is a
 * record of what the server took, not a copy anyone relies on: when it
 * cannot be written (success_log_error), the lines are dropped and the
 * records, delivered, still go. A refused record's line is another
 * matter: session_rejected syncs it before the record may go.
 */
int
session_delivered(struct session *s, const struct record *r, long code)
{
	char	context[64], *line;
	size_t	len;
	int	status = 0;

	/* Once per delivered log: no JSON library round trip for this. */
	snprintf(context, sizeof context, "{\"responseCode\":%ld}", code);
	if ((line = record_log_line(r, context)) == NULL)
		return (-1);
	len = strlen(line);
	if (delivered_room(s, len) == 0) {
		memcpy(s->delivered + s->delivered_len, line, len);
		s->delivered_len += len;
	} else if (session_flush(s) == -1 ||
	    write_all(s->success_log, line, len) == -1)
		status = -1;	/* no room to wait in: out now, in order */
	free(line);
	return (status);
}

/* Write the lines of the records delivered since the last flush. */
int
session_flush(struct session *s)
{
	int	status;

	if (s->delivered_len == 0)
		return (0);
	status = write_all(s->success_log, s->delivered, s->delivered_len);
	s->delivered_len = 0;
	return (status);
}

int
session_rejected(struct session *s, const struct record *r, long code,
    const char *body, size_t len)
{
	json_t	*response, *context;
	char	*text;
	int	 status = -1;

	response = json_stringn(body, len);
	if (response == NULL)
		response = json_sprintf("(%zu bytes, not UTF-8)", len);
	context = json_pack("{s:o, s:i}", "response", response,
	    "responseCode", (int)code);
	text = context != NULL ? json_dumps(context, JSON_COMPACT) : NULL;
	json_decref(context);
	/* The only copy of a record refused for good: on disk before it goes. */
	if (text != NULL && append_record(s->failure_log, r, text) == 0 &&
	    compat_sync_data(s->failure_log) == 0)
		status = 0;
	free(text);
	return (status);
}

/*
 * A record that cannot be decoded is kept, as hex, for a person to look at:
 * it is never dropped silently.
 */
int
session_quarantine(struct session *s, uint64_t seq, const void *data,
    size_t size, const char *reason)
{
	static const char	 digits[] = "0123456789abcdef";
	const unsigned char	*p = data;
	char			 now[TIME_BUFSIZE], *hex, *text;
	json_t			*line;
	size_t			 i;
	int			 fd, status = -1;

	if ((hex = malloc(size * 2 + 1)) == NULL)
		return (-1);
	for (i = 0; i < size; i++) {
		hex[2 * i] = digits[p[i] >> 4];
		hex[2 * i + 1] = digits[p[i] & 15];
	}
	hex[2 * size] = '\0';
	format_time(clock_realtime_us(), now);
	line = json_pack("{s:s, s:I, s:s, s:s}", "time", now,
	    "seq", (json_int_t)seq, "reason", reason, "record_hex", hex);
	free(hex);
	text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (text != NULL && (fd = open_log(s->dirfd, QUARANTINE_NAME)) != -1) {
		if (write_all(fd, text, strlen(text)) == 0 &&
		    write_all(fd, "\n", 1) == 0 && compat_sync_file(fd) == 0)
			status = 0;
		close(fd);
	}
	free(text);
	return (status);
}

/* The status lock is there exactly while the server is considered down. */
int
session_set_server_down(struct session *s, bool down)
{
	int	fd;

	if (down == s->server_down)
		return (0);
	if (down) {
		if ((fd = file_open(s->dirfd, STATUS_LOCK_NAME, O_WRONLY |
		    O_CREAT, 1)) == -1)
			return (-1);
		close(fd);
	} else if (unlinkat(s->dirfd, STATUS_LOCK_NAME, 0) == -1 &&
	    errno != ENOENT)
		return (-1);
	s->server_down = down;
	return (0);
}

/*
 * While the server refuses every delivery with one code, DIR/echopost.refused
 * says so for --status (refused.h).
 */
int
session_set_refused(struct session *s, long code, const char *url)
{
	struct refused	 state;
	char		 since[TIME_BUFSIZE], *text;
	size_t		 len;
	int		 fd, status;

	if (code == 0)
		return (unlinkat(s->dirfd, REFUSED_NAME, 0) == -1 &&
		    errno != ENOENT ? -1 : 0);
	format_time(clock_realtime_us(), since);
	state.code = (int)code;
	state.url = url;
	state.since = since;
	if ((text = refused_text(&state, &len)) == NULL)
		return (-1);
	/* Emptied only once it is known to be ours alone (no O_TRUNC). */
	fd = file_open(s->dirfd, REFUSED_NAME, O_WRONLY | O_CREAT, 1);
	status = fd == -1 || ftruncate(fd, 0) == -1 ||
	    write_all(fd, text, len) == -1 ? -1 : 0;
	if (fd != -1)
		close(fd);
	free(text);
	return (status);
}

/*
 * DIR/echopost.status: how this run is doing, for --status, replaced whole
 * (a new file renamed over it) so that a reader never sees half of it.
 * Not synced: it only says how things are while the run lasts.
 */
int
session_publish(struct session *s, const char *text)
{
	int	fd, status;

	if (unlinkat(s->dirfd, STATUS_NAME ".new", 0) == -1 && errno != ENOENT)
		return (-1);
	if ((fd = file_open(s->dirfd, STATUS_NAME ".new", O_WRONLY | O_CREAT |
	    O_EXCL, 1)) == -1)
		return (-1);
	status = write_all(fd, text, strlen(text));
	if (close(fd) == -1)
		status = -1;
	if (status == 0)
		status = renameat(s->dirfd, STATUS_NAME ".new", s->dirfd,
		    STATUS_NAME);
	s->published = status == 0;
	return (status);
}

void
session_close(struct session *s)
{
	if (s == NULL)
		return;
	if (s->published && unlinkat(s->dirfd, STATUS_NAME, 0) == -1)
		log_event(LEVEL_WARN, "status_file_error", "{s:s}", "error",
		    strerror(errno));
	if (session_set_server_down(s, false) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
	if (s->success_log != -1) {
		if (session_flush(s) == -1)
			log_event(LEVEL_WARN, "success_log_error", "{s:s}",
			    "error", strerror(errno));
		close(s->success_log);
	}
	free(s->delivered);
	if (s->failure_log != -1)
		close(s->failure_log);
	if (s->fd != -1)
		close(s->fd);
	if (s->dirfd != -1)
		close(s->dirfd);
	log_close_file();
	free(s);
}

static int
is_session(const struct dirent *entry)
{
	return (strncmp(entry->d_name, SESSION_PREFIX,
	    sizeof SESSION_PREFIX - 1) == 0);
}

/*
 * The session directories of DIR, oldest first: their names are UTC times
 * that sort as text. Returns the count, or -1.
 */
static int
list_sessions(int dirfd, struct dirent ***names)
{
	return (scandirat(dirfd, ".", names, is_session, alphasort));
}

static void
free_list(struct dirent **names, int count)
{
	int	i;

	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* Name of the newest session directory in buf, or "" if none. */
int
session_latest(int dirfd, char *buf, size_t size)
{
	struct dirent	**names;
	int		  count;

	buf[0] = '\0';
	if ((count = list_sessions(dirfd, &names)) == -1)
		return (-1);
	if (count > 0)
		strlcpy(buf, names[count - 1]->d_name, size);
	free_list(names, count);
	return (0);
}

/*
 * Remove session directory name and the files in it, never following a
 * link: one planted in its place is removed itself.
 */
static int
remove_session(struct session *s, const char *name)
{
	struct dirent	*entry;
	DIR		*dir;
	int		 fd, status = 0;

	fd = openat(s->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return (errno == ELOOP || errno == ENOTDIR ?
		    unlinkat(s->dirfd, name, 0) : -1);
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return (-1);
	}
	while ((entry = readdir(dir)) != NULL)
		if (strcmp(entry->d_name, ".") != 0 &&
		    strcmp(entry->d_name, "..") != 0 &&
		    unlinkat(fd, entry->d_name, 0) == -1)
			status = -1;
	closedir(dir);
	if (status == 0)
		status = unlinkat(s->dirfd, name, AT_REMOVEDIR);
	return (status);
}

/* Remove the oldest session directories beyond keep, never the current. */
void
session_prune(struct session *s, int keep)
{
	struct dirent	**names;
	char		  path[PATH_MAX];
	int		  count, i;

	if ((count = list_sessions(s->dirfd, &names)) == -1)
		return;
	for (i = 0; i < count - keep; i++) {
		if (strcmp(names[i]->d_name, s->name) == 0 ||
		    dir_file(path, s->dir, names[i]->d_name) == -1)
			continue;
		if (remove_session(s, names[i]->d_name) == -1)
			log_event(LEVEL_WARN, "session_prune_error",
			    "{s:s, s:s}", "path", path, "error",
			    strerror(errno));
		else
			log_event(LEVEL_INFO, "session_removed", "{s:s}",
			    "path", path);
	}
	free_list(names, count);
}
