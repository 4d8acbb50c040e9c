/*
 * admin.c: --status and --dump.
 *
 * Neither takes DIR's lock or writes anything: they read the pid file and
 * open the spool as a reader without GDBM's lock, so they can be run while
 * an instance is serving. They see what the instance last synced.
 */
#include "config.h"

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "echopost.h"
#include "http.h"
#include "log.h"
#include "record.h"
#include "session.h"
#include "spool.h"
#include "util.h"

enum instance {
	INSTANCE_RUNNING,
	INSTANCE_NONE,
	INSTANCE_UNKNOWN	/* DIR or its pid file cannot be read */
};

struct status {
	bool		 dir_exists;
	enum instance	 instance;
	pid_t		 pid;		/* of the running instance */
	char		 unknown[PATH_MAX + 64]; /* why nobody knows */
	int		 socket;	/* 1, 0, or -1: cannot tell */
	bool		 spool_readable;
	char		 spool_error[256];
	uint64_t	 records;
	int64_t		 bytes;
	int64_t		 oldest_us;	/* 0 when the spool is empty */
	int64_t		 newest_us;
	char		 session[NAME_MAX + 1];
	bool		 healthy;
	long		 code;
	char		 error[CURL_ERROR_SIZE];
	json_t		*refused;	/* DIR/echopost.refused, or NULL */
};

/*
 * Is an instance running on DIR? Only if the pid file is locked: a file
 * left by a crash may name a process that is now something else.
 */
static void
find_instance(const char *dir, struct status *st)
{
	char	 path[PATH_MAX], text[32];
	ssize_t	 n;
	int	 fd;

	st->instance = INSTANCE_NONE;
	if (dir_file(path, dir, PID_FILE_NAME) == -1 || (fd = open(path,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno != ENOENT) {
			st->instance = INSTANCE_UNKNOWN;
			snprintf(st->unknown, sizeof st->unknown, "%s: %s",
			    path, strerror(errno));
		}
		return;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		flock(fd, LOCK_UN);
	else if (errno == EWOULDBLOCK) {
		st->instance = INSTANCE_RUNNING;
		if ((n = pread(fd, text, sizeof text - 1, 0)) > 0) {
			text[n] = '\0';
			st->pid = (pid_t)strtol(text, NULL, 10);
		}
	} else {
		st->instance = INSTANCE_UNKNOWN;
		snprintf(st->unknown, sizeof st->unknown, "%s: %s", path,
		    strerror(errno));
	}
	close(fd);
}

static int64_t
record_time(struct spool *spool, uint64_t seq)
{
	struct record	 r;
	void		*data;
	size_t		 size;
	int64_t		 when = 0;

	if (spool_get(spool, seq, &data, &size) != 1)
		return (0);
	if (record_decode(data, size, &r) == RECORD_OK)
		when = r.received_at_us;
	free(data);
	return (when);
}

static void
read_spool(const char *dir, struct status *st)
{
	struct spool	*spool;
	char		 path[PATH_MAX], cause[CAUSE_SIZE];
	uint64_t	 head, next;

	if (dir_file(path, dir, SPOOL_NAME) == -1) {
		strlcpy(st->spool_error, strerror(errno),
		    sizeof st->spool_error);
		return;
	}
	if ((spool = spool_open_reader(path, cause)) == NULL) {
		strlcpy(st->spool_error, cause, sizeof st->spool_error);
		return;
	}
	st->spool_readable = true;
	strlcpy(st->spool_error, spool_error(spool), sizeof st->spool_error);
	st->bytes = spool_size(spool);
	spool_range(spool, &head, &next);
	st->records = next - head;
	if (st->records > 0) {
		st->oldest_us = record_time(spool, head);
		st->newest_us = record_time(spool, next - 1);
	}
	spool_close(spool, 0);
}

/*
 * What a run found: the server refusing every delivery with one code. A
 * file that is not what a run writes is no news, and shown as none.
 */
static json_t *
read_refused(const char *dir)
{
	json_t	*refused;
	char	 path[PATH_MAX];
	int	 fd;

	if (dir_file(path, dir, REFUSED_NAME) == -1 || (fd = open(path,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return (NULL);
	refused = json_loadfd(fd, 0, NULL);
	close(fd);
	if (refused != NULL && json_unpack_ex(refused, NULL,
	    JSON_VALIDATE_ONLY, "{s:i, s:s, s:s}", "code", "url", "since") ==
	    -1) {
		json_decref(refused);
		refused = NULL;
	}
	return (refused);
}

static void
gather(const struct options *o, struct status *st)
{
	struct tls_files tls = { o->cacert, o->capath };
	struct stat	 sb;
	char		 path[PATH_MAX];

	memset(st, 0, sizeof *st);
	st->dir_exists = stat(o->dir, &sb) == 0 || errno != ENOENT;
	find_instance(o->dir, st);
	if (dir_file(path, o->dir, SOCKET_NAME) == -1 ||
	    lstat(path, &sb) == -1)
		st->socket = errno == ENOENT ? 0 : -1;
	else
		st->socket = S_ISSOCK(sb.st_mode);
	if (st->dir_exists)
		read_spool(o->dir, st);
	else
		st->spool_readable = true;	/* nothing waits */
	session_latest(o->dir, st->session, sizeof st->session);
	st->refused = read_refused(o->dir);
	st->healthy = probe_health(o->health_url, &tls, o->timeout_ms,
	    &st->code, st->error);
}

static json_t *
time_or_null(int64_t us)
{
	char	when[TIME_BUFSIZE];

	if (us == 0)
		return (json_null());
	format_time(us, when);
	return (json_string(when));
}

static int
print_json(const struct options *o, const struct status *st)
{
	json_t	*report;
	int	 status;

	report = json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:{s:b, s:o, s:I, "
	    "s:I, s:o, s:o}, s:o, s:{s:s, s:b, s:o, s:o, s:O}}",
	    "dir", o->dir,
	    "dir_exists", st->dir_exists,
	    "running", st->instance == INSTANCE_UNKNOWN ? json_null() :
	    json_boolean(st->instance == INSTANCE_RUNNING),
	    "pid", st->pid != 0 ? json_integer(st->pid) : json_null(),
	    "unknown", st->instance == INSTANCE_UNKNOWN ?
	    json_string(st->unknown) : json_null(),
	    "socket", st->socket == -1 ? json_null() :
	    json_boolean(st->socket == 1),
	    "spool",
	    "readable", st->spool_readable,
	    "error", st->spool_error[0] == '\0' ? json_null() :
	    json_string(st->spool_error),
	    "records", (json_int_t)st->records,
	    "bytes", (json_int_t)st->bytes,
	    "oldest", time_or_null(st->oldest_us),
	    "newest", time_or_null(st->newest_us),
	    "latest_session", st->session[0] != '\0' ?
	    json_string(st->session) : json_null(),
	    "server",
	    "url", o->shown_url,
	    "healthy", st->healthy,
	    "code", st->code != 0 ? json_integer(st->code) : json_null(),
	    "error", st->error[0] != '\0' ? json_string(st->error) :
	    json_null(),
	    "refused", st->refused != NULL ? st->refused : json_null());
	if (report == NULL)
		return (-1);
	status = json_dumpf(report, stdout, JSON_INDENT(2));
	json_decref(report);
	putchar('\n');
	return (status);
}

static void
print_age(const char *label, int64_t us)
{
	char	when[TIME_BUFSIZE];
	int64_t	age;

	if (us == 0)
		return;
	format_time(us, when);
	age = (clock_realtime_us() - us) / 1000000;
	printf("%-16s%s (%lldh %02lldm %02llds ago)\n", label, when,
	    (long long)(age / 3600), (long long)(age / 60 % 60),
	    (long long)(age % 60));
}

static void
print_table(const struct options *o, const struct status *st)
{
	printf("%-16s%s%s\n", "directory", o->dir, st->dir_exists ? "" :
	    " (no such directory)");
	if (st->instance == INSTANCE_RUNNING)
		printf("%-16srunning, pid %ld\n", "instance", (long)st->pid);
	else if (st->instance == INSTANCE_NONE)
		printf("%-16snot running\n", "instance");
	else
		printf("%-16scannot tell (%s)\n", "instance", st->unknown);
	printf("%-16s%s\n", "socket", st->socket == 1 ? "present" :
	    st->socket == 0 ? "absent" : "cannot tell");
	if (st->spool_readable)
		printf("%-16s%llu records, %lld bytes on disk\n", "spool",
		    (unsigned long long)st->records, (long long)st->bytes);
	if (st->spool_readable && st->spool_error[0] != '\0')
		printf("%-16s%s\n", "", st->spool_error);
	else if (!st->spool_readable)
		printf("%-16sunreadable: %s\n", "spool", st->spool_error);
	print_age("oldest record", st->oldest_us);
	print_age("newest record", st->newest_us);
	printf("%-16s%s\n", "latest session",
	    st->session[0] != '\0' ? st->session : "none");
	if (st->healthy)
		printf("%-16s%s healthy (%ld)\n", "server", o->shown_url,
		    st->code);
	else if (st->code != 0)
		printf("%-16s%s down (answered %ld)\n", "server",
		    o->shown_url, st->code);
	else
		printf("%-16s%s down (%s)\n", "server", o->shown_url,
		    st->error);
	if (st->refused != NULL)
		printf("%-16s%s answered %lld to every delivery, since %s\n",
		    "deliveries", json_string_value(json_object_get(st->refused,
		    "url")), (long long)json_integer_value(json_object_get(
		    st->refused, "code")), json_string_value(json_object_get(
		    st->refused, "since")));
}

int
admin_status(const struct options *o)
{
	struct status	st;

	gather(o, &st);
	if (o->json) {
		if (print_json(o, &st) == -1)
			return (EX_SOFTWARE);
	} else
		print_table(o, &st);
	json_decref(st.refused);
	if (fflush(stdout) != 0)
		return (EX_IOERR);
	if (st.instance == INSTANCE_UNKNOWN)
		return (EXIT_CANNOT_TELL);
	return (st.instance == INSTANCE_RUNNING ? 0 : EXIT_NOT_RUNNING);
}

static int
dump_one(struct spool *spool, uint64_t seq)
{
	struct record	 r;
	enum record_status status;
	void		*data;
	size_t		 size;
	char		 context[64], *line;
	int		 found;

	if ((found = spool_get(spool, seq, &data, &size)) != 1)
		return (found);
	status = record_decode(data, size, &r);
	if (status != RECORD_OK) {
		warnx("record %llu: %s", (unsigned long long)seq,
		    record_status_string(status));
		free(data);
		return (-1);
	}
	snprintf(context, sizeof context, "{\"seq\":%llu}",
	    (unsigned long long)seq);
	line = record_log_line(&r, context);
	free(data);
	if (line == NULL)
		return (-1);
	fputs(line, stdout);
	free(line);
	return (1);
}

int
admin_dump(const struct options *o)
{
	struct spool	*spool;
	char		 path[PATH_MAX], cause[CAUSE_SIZE];
	uint64_t	 head, next, seq;
	struct stat	 sb;
	int		 bad = 0, error;

	if (stat(o->dir, &sb) == -1 || dir_file(path, o->dir,
	    SPOOL_NAME) == -1) {
		error = errno;
		warnc(error, "%s", o->dir);
		return (error == ENOENT ? EX_NOINPUT : EX_IOERR);
	}
	if ((spool = spool_open_reader(path, cause)) == NULL) {
		warnx("cannot read spool %s: %s", path, cause);
		return (EX_IOERR);
	}
	if (*spool_error(spool) != '\0')
		warnx("%s", spool_error(spool));
	spool_range(spool, &head, &next);
	for (seq = head; seq < next && !ferror(stdout); seq++)
		if (dump_one(spool, seq) == -1)
			bad++;
	spool_close(spool, 0);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warn("write error");
		return (EX_IOERR);
	}
	return (bad == 0 ? 0 : EX_IOERR);
}
