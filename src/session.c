/*
 * session.c: the run's files under DIR.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
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
#include "log.h"
#include "session.h"

struct session {
	char	 dir[PATH_MAX];		/* DIR */
	char	 path[PATH_MAX];	/* DIR/session-... */
	int	 fd;			/* of the session directory */
	int	 success_log;
	int	 failure_log;
	bool	 server_down;
};

/* DIR/NAME in buf: 0, or -1 and ENAMETOOLONG if it does not fit. */
int
dir_file(char buf[PATH_MAX], const char *dir, const char *name)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

static int
open_log(const char *dir, const char *name)
{
	char	path[PATH_MAX];

	if (dir_file(path, dir, name) == -1)
		return (-1);
	return (open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0600));
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
	char		name[64];

	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(name, sizeof name, SESSION_PREFIX "%Y-%m-%dT%H-%M-%SZ",
	    &tm) == 0)
		return (-1);
	if (dir_file(s->path, s->dir, name) == -1)
		return (-1);
	if (mkdir(s->path, 0700) == -1 && errno != EEXIST)
		return (-1);
	s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->fd == -1 || fstat(s->fd, &sb) == -1)
		return (-1);
	if (sb.st_uid != geteuid()) {
		errno = EPERM;
		return (-1);
	}
	return (0);
}

static int
open_session_log(struct session *s, const char *name)
{
	return (openat(s->fd, name, O_WRONLY | O_CREAT | O_APPEND |
	    O_NOFOLLOW | O_CLOEXEC, 0600));
}

/* Returns 0, or -1 with errno set; *sp is always freed by session_close. */
int
session_open(struct session **sp, const char *dir)
{
	struct session	*s;
	int		 fd;

	if ((*sp = s = calloc(1, sizeof *s)) == NULL)
		return (-1);
	s->fd = s->success_log = s->failure_log = -1;
	strlcpy(s->dir, dir, sizeof s->dir);
	if (make_session_dir(s) == -1 ||
	    (fd = open_session_log(s, EVENT_LOG_NAME)) == -1)
		return (-1);
	log_set_file(fd);
	s->success_log = open_session_log(s, SUCCESS_LOG_NAME);
	s->failure_log = open_session_log(s, FAILURE_LOG_NAME);
	if (s->success_log == -1 || s->failure_log == -1)
		return (-1);
	return (0);
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

int
session_delivered(struct session *s, const struct record *r, long code)
{
	char	context[64];

	/* Once per delivered log: no JSON library round trip for this. */
	snprintf(context, sizeof context, "{\"responseCode\":%ld}", code);
	return (append_record(s->success_log, r, context));
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
	if (text != NULL)
		status = append_record(s->failure_log, r, text);
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
	if (text != NULL && (fd = open_log(s->dir, QUARANTINE_NAME)) != -1) {
		if (write_all(fd, text, strlen(text)) == 0 &&
		    write_all(fd, "\n", 1) == 0 && fsync(fd) == 0)
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
	char	path[PATH_MAX];
	int	fd;

	if (down == s->server_down)
		return (0);
	if (dir_file(path, s->dir, STATUS_LOCK_NAME) == -1)
		return (-1);
	if (down) {
		fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd == -1)
			return (-1);
		close(fd);
	} else if (unlink(path) == -1 && errno != ENOENT)
		return (-1);
	s->server_down = down;
	return (0);
}

void
session_close(struct session *s)
{
	if (s == NULL)
		return;
	if (session_set_server_down(s, false) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
	if (s->success_log != -1)
		close(s->success_log);
	if (s->failure_log != -1)
		close(s->failure_log);
	if (s->fd != -1)
		close(s->fd);
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
list_sessions(const char *dir, struct dirent ***names)
{
	return (scandir(dir, names, is_session, alphasort));
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
session_latest(const char *dir, char *buf, size_t size)
{
	struct dirent	**names;
	int		  count;

	buf[0] = '\0';
	if ((count = list_sessions(dir, &names)) == -1)
		return (-1);
	if (count > 0)
		strlcpy(buf, names[count - 1]->d_name, size);
	free_list(names, count);
	return (0);
}

static int
remove_entry(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	return (type == FTW_DP ? rmdir(path) : unlink(path));
}

/* Remove the oldest session directories beyond keep, never the current. */
void
session_prune(struct session *s, int keep)
{
	struct dirent	**names;
	char		  path[PATH_MAX];
	int		  count, i;

	if ((count = list_sessions(s->dir, &names)) == -1)
		return;
	for (i = 0; i < count - keep; i++) {
		if (dir_file(path, s->dir, names[i]->d_name) == -1 ||
		    strcmp(path, s->path) == 0)
			continue;
		if (nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS) == -1)
			log_event(LEVEL_WARN, "session_prune_error",
			    "{s:s, s:s}", "path", path, "error",
			    strerror(errno));
		else
			log_event(LEVEL_INFO, "session_removed", "{s:s}",
			    "path", path);
	}
	free_list(names, count);
}
