/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * admin.c: --status, and what the admin commands share.
 *
 * --status takes no lock and writes nothing: it reads the pid file and
 * opens the spool as a reader without GDBM's lock, so it can be run while
 * an instance is serving. It sees what the instance last synced.
 *
 * DIR is what a user wrote: root reads it as DIR's owner (dir_open()
 * becomes that user), every file through DIR's descriptor and only if it
 * is a regular file of the owner's, names are printed escaped (vis(3)), and
 * no file is read beyond what its report needs.
 */
#include "config.h"

/* libbsd: strnvis(3) in NetBSD's argument order; only stravis is used. */
#define LIBBSD_NETBSD_VIS

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <vis.h>

#include <jansson.h>

#include "admin.h"
#include "dir.h"
#include "echopost.h"
#include "files.h"
#include "http.h"
#include "log.h"
#include "record.h"
#include "refused.h"
#include "session.h"
#include "spool.h"
#include "util.h"

enum instance {
	INSTANCE_RUNNING,
	INSTANCE_NONE,
	INSTANCE_UNKNOWN	/* DIR or its pid file cannot be read */
};

/* No report of a run is bigger; anything bigger is not one. */
#define REPORT_MAX	4096

struct status {
	bool		 dir_exists;
	enum instance	 instance;
	pid_t		 pid;		/* of the running instance */
	char		 unknown[CAUSE_SIZE]; /* why nobody knows */
	int		 socket;	/* 1, 0, or -1: cannot tell */
	bool		 spool_readable;
	char		 spool_error[CAUSE_SIZE];
	json_t		*damaged;	/* files not readable whole */
	uint64_t	 records;
	uint64_t	 given_up;	/* of them, by --give-up */
	int64_t		 bytes;
	int64_t		 oldest_us;	/* 0 when the spool is empty */
	int64_t		 newest_us;
	char		 session[NAME_MAX + 1];
	bool		 healthy;
	long		 code;
	char		 error[CURL_ERROR_SIZE];
	json_t		*refused;	/* DIR/echopost.refused, or NULL */
	json_t		*run;		/* DIR/echopost.status, or NULL */
	const char	*shown_url;	/* the server asked, for people */
};

/*
 * Text a user chose (a file name, a reason naming one), as it may be shown
 * on a terminal: every byte that is not printable escaped as vis(3) does.
 * The caller frees it; NULL when out of memory.
 */
char *
shown(const char *text)
{
	char	*out;

	if (stravis(&out, text, VIS_OCTAL | VIS_CSTYLE | VIS_TAB | VIS_NL) ==
	    -1)
		return (NULL);
	return (out);
}

/* warnx("%s: %s", name, why) with both escaped; name may be NULL. */
void
warn_shown(const char *name, const char *why)
{
	char	*a = name != NULL ? shown(name) : NULL, *b = shown(why);

	if (name != NULL)
		warnx("%s: %s", a != NULL ? a : "?", b != NULL ? b : "?");
	else
		warnx("%s", b != NULL ? b : "?");
	free(a);
	free(b);
}

static void
find_instance(int dirfd, struct status *st)
{
	pid_t	pid;

	switch (dir_holder(dirfd, &pid)) {
	case 1:
		st->instance = INSTANCE_RUNNING;
		st->pid = pid > 0 ? pid : 0;
		break;
	case 0:
		st->instance = INSTANCE_NONE;
		break;
	default:
		st->instance = INSTANCE_UNKNOWN;
		cause_set(st->unknown, errno, "%s", PID_FILE_NAME);
	}
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

/* A file of the spool that cannot be read whole: on stderr, and kept. */
static void
add_damaged(void *arg, const char *name, const char *why)
{
	struct status	*st = arg;

	warn_shown(name, why);
	if (st->damaged == NULL)
		st->damaged = json_array();
	json_array_append_new(st->damaged, json_pack("{s:s, s:s}", "file",
	    name, "error", why));
}

static void
read_spool(int dirfd, const char *dir, struct status *st)
{
	struct spool	*spool;
	char		 path[PATH_MAX], cause[CAUSE_SIZE];
	uint64_t	 head, next;

	if (dir_file(path, dir, SPOOL_NAME) == -1) {
		cause_set(st->spool_error, 0, "%s", strerror(errno));
		return;
	}
	if ((spool = spool_open_reader(dirfd, path, cause)) == NULL) {
		cause_set(st->spool_error, 0, "%s", cause);
		return;
	}
	st->spool_readable = true;
	cause_set(st->spool_error, 0, "%s", spool_error(spool));
	if (spool_check(spool, add_damaged, st) > 0) {
		st->spool_readable = false;
		cause_set(st->spool_error, 0, "%zu files of the spool cannot "
		    "be read whole: records in them are lost or will be "
		    "reported missing", json_array_size(st->damaged));
	}
	st->bytes = spool_size(spool);
	spool_range(spool, &head, &next);
	st->records = next - head;
	st->given_up = spool_given_up_count(spool);
	if (st->records > 0) {
		st->oldest_us = record_time(spool, head);
		st->newest_us = record_time(spool, next - 1);
	}
	spool_close(spool, 0);
}

/*
 * A small JSON file a run writes in DIR, or NULL: one bigger than any run
 * writes, not a file of the owner's alone, or not JSON, is no news.
 */
static json_t *
read_report(int dirfd, const char *name)
{
	char	text[REPORT_MAX + 1];
	ssize_t	n;
	int	fd;

	if ((fd = file_open(dirfd, name, O_RDONLY, 1)) == -1)
		return (NULL);
	n = read(fd, text, sizeof text);
	close(fd);
	if (n <= 0 || n > REPORT_MAX)
		return (NULL);
	return (json_loadb(text, (size_t)n, 0, NULL));
}

/* What a run found: the server refusing every delivery with one code. */
static json_t *
read_refused(int dirfd)
{
	json_t		*refused;
	struct refused	 state;

	refused = read_report(dirfd, REFUSED_NAME);
	if (refused != NULL && refused_read(refused, &state) == -1) {
		json_decref(refused);
		refused = NULL;
	}
	return (refused);
}

/* How the running instance is doing, as it last said. */
static json_t *
read_run_status(int dirfd)
{
	json_t	*run;

	run = read_report(dirfd, STATUS_NAME);
	if (run != NULL && json_unpack_ex(run, NULL, JSON_VALIDATE_ONLY,
	    "{s:s, s:s, s:s, s:I, s:I, s:I}", "mode", "health_url", "state",
	    "sent", "failed", "remaining") == -1) {
		json_decref(run);
		run = NULL;
	}
	return (run);
}

/*
 * The server of the running instance, unless -health-url names one: the
 * instance's own URL, when it is http(s) and holds no password (the file
 * has it hidden).
 */
static const char *
probe_url(const struct options *o, const struct status *st)
{
	const char	*url;

	if (o->health_url_given || st->run == NULL)
		return (o->health_url);
	url = json_string_value(json_object_get(st->run, "health_url"));
	if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) !=
	    0) || strstr(url, "***@") != NULL)
		return (o->health_url);
	return (url);
}

/*
 * Everything but the server's answer is read through DIR's descriptor, as
 * DIR's owner. A DIR that is not there is reported as such; one that
 * cannot be opened or is refused leaves everything in it unknown, and why.
 */
static void
gather(const struct options *o, struct status *st)
{
	struct dir_check dir;
	struct stat	 sb;
	const char	*url;
	int		 status;

	memset(st, 0, sizeof *st);
	st->instance = INSTANCE_NONE;
	st->spool_readable = true;	/* nothing waits, unless DIR says so */
	status = dir_open(o->dir, false, &dir);
	st->dir_exists = status != EX_NOINPUT;
	if (status != 0 && st->dir_exists) {
		st->instance = INSTANCE_UNKNOWN;
		cause_set(st->unknown, 0, "%s", dir.error);
		st->socket = -1;
		st->spool_readable = false;
		cause_set(st->spool_error, 0, "%s", dir.error);
	} else if (status == 0) {
		find_instance(dir.fd, st);
		if (fstatat(dir.fd, SOCKET_NAME, &sb, AT_SYMLINK_NOFOLLOW) ==
		    -1)
			st->socket = errno == ENOENT ? 0 : -1;
		else
			st->socket = S_ISSOCK(sb.st_mode);
		st->spool_readable = false;
		read_spool(dir.fd, dir.path, st);
		session_latest(dir.fd, st->session, sizeof st->session);
		st->refused = read_refused(dir.fd);
		if (st->instance == INSTANCE_RUNNING)
			st->run = read_run_status(dir.fd);
		close(dir.fd);
	}
	url = probe_url(o, st);
	st->shown_url = url == o->health_url ? o->shown_url : url;
	st->healthy = probe_health(o, url, &st->code, st->error);
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

/* No instance runs, and records wait: nothing will deliver them. */
static bool
stranded(const struct status *st)
{
	return (st->instance == INSTANCE_NONE && st->records > 0);
}

static int
print_json(const struct options *o, const struct status *st)
{
	json_t	*report;
	int	 status;

	report = json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:b, s:b, s:O, "
	    "s:{s:b, s:o, s:I, s:I, "
	    "s:I, s:o, s:o, s:o}, s:o, s:{s:s, s:b, s:o, s:o, s:O}}",
	    "dir", o->dir,
	    "dir_exists", st->dir_exists,
	    "running", st->instance == INSTANCE_UNKNOWN ? json_null() :
	    json_boolean(st->instance == INSTANCE_RUNNING),
	    "pid", st->pid != 0 ? json_integer(st->pid) : json_null(),
	    "unknown", st->instance == INSTANCE_UNKNOWN ?
	    json_string(st->unknown) : json_null(),
	    "socket", st->socket == -1 ? json_null() :
	    json_boolean(st->socket == 1),
	    "stale_socket", st->socket == 1 && st->instance == INSTANCE_NONE,
	    "stranded", stranded(st),
	    "run", st->run != NULL ? st->run : json_null(),
	    "spool",
	    "readable", st->spool_readable,
	    "error", st->spool_error[0] == '\0' ? json_null() :
	    json_string(st->spool_error),
	    "records", (json_int_t)st->records,
	    "given_up", (json_int_t)st->given_up,
	    "bytes", (json_int_t)st->bytes,
	    "oldest", time_or_null(st->oldest_us),
	    "newest", time_or_null(st->newest_us),
	    "damaged", st->damaged != NULL ? json_incref(st->damaged) :
	    json_array(),
	    "latest_session", st->session[0] != '\0' ?
	    json_string(st->session) : json_null(),
	    "server",
	    "url", st->shown_url,
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

/* printf("%-16s" fmt, label, text) with text escaped, fmt one %s. */
static void
print_shown(const char *label, const char *fmt, const char *text)
{
	char	*safe = shown(text);

	printf("%-16s", label);
	printf(fmt, safe != NULL ? safe : "?");
	free(safe);
}

/* The running instance's own account: what it does, how fast. */
static void
print_run(json_t *run)
{
	json_t	*eta;
	char	 line[256];
	int	 n;

	n = snprintf(line, sizeof line, "%s, %s: %lld sent, %lld failed, "
	    "%lld left", json_string_value(json_object_get(run, "mode")),
	    json_string_value(json_object_get(run, "state")),
	    (long long)json_integer_value(json_object_get(run, "sent")),
	    (long long)json_integer_value(json_object_get(run, "failed")),
	    (long long)json_integer_value(json_object_get(run, "remaining")));
	eta = json_object_get(run, "eta_s");
	if (n > 0 && (size_t)n < sizeof line && json_is_integer(eta))
		snprintf(line + n, sizeof line - (size_t)n, ", %.0f/s, ETA "
		    "%lld:%02lld:%02lld", json_number_value(json_object_get(
		    run, "rate")), (long long)(json_integer_value(eta) / 3600),
		    (long long)(json_integer_value(eta) / 60 % 60),
		    (long long)(json_integer_value(eta) % 60));
	print_shown("run", "%s\n", line);
}

static void
print_table(const struct options *o, const struct status *st)
{
	struct refused	refused;
	char		line[REPORT_MAX + PATH_MAX];

	print_shown("directory", st->dir_exists ? "%s\n" :
	    "%s (no such directory)\n", o->dir);
	if (st->instance == INSTANCE_RUNNING)
		printf("%-16srunning, pid %ld\n", "instance", (long)st->pid);
	else if (st->instance == INSTANCE_NONE)
		printf("%-16snot running\n", "instance");
	else
		print_shown("instance", "cannot tell (%s)\n", st->unknown);
	printf("%-16s%s\n", "socket", st->socket == 1 ? (st->instance ==
	    INSTANCE_NONE ? "stale: echopost is not running, and the SDK "
	    "will not start it while this name is there" : "present") :
	    st->socket == 0 ? "absent" : "cannot tell");
	if (st->spool_readable || st->damaged != NULL)
		printf("%-16s%llu records, %lld bytes on disk\n", "spool",
		    (unsigned long long)st->records, (long long)st->bytes);
	if (st->given_up > 0)
		printf("%-16s%llu records, to the failure log unsent\n",
		    "given up", (unsigned long long)st->given_up);
	if (st->spool_readable && st->spool_error[0] != '\0')
		print_shown("", "%s\n", st->spool_error);
	else if (!st->spool_readable)
		print_shown(st->damaged != NULL ? "" : "spool",
		    "unreadable: %s\n", st->spool_error);
	print_age("oldest record", st->oldest_us);
	print_age("newest record", st->newest_us);
	print_shown("latest session", "%s\n", st->session[0] != '\0' ?
	    st->session : "none");
	if (st->run != NULL)
		print_run(st->run);
	if (st->healthy)
		snprintf(line, sizeof line, "%s healthy (%ld)", st->shown_url,
		    st->code);
	else if (st->code != 0)
		snprintf(line, sizeof line, "%s down (answered %ld)",
		    st->shown_url, st->code);
	else
		snprintf(line, sizeof line, "%s down (%s)", st->shown_url,
		    st->error);
	print_shown("server", "%s\n", line);
	if (stranded(st)) {
		snprintf(line, sizeof line, "%s --replay-only -datanadhi %s "
		    "(with the SDK's -health-url and -api-key)", PACKAGE,
		    o->dir);
		print_shown("to deliver", "%s\n", line);
	}
	if (st->refused != NULL && refused_read(st->refused, &refused) == 0) {
		snprintf(line, sizeof line, "%s answered %d to every "
		    "delivery, since %s", refused.url, refused.code,
		    refused.since);
		print_shown("deliveries", "%s\n", line);
	}
}

int
admin_status(const struct options *o)
{
	struct status	st;
	bool		damaged;

	gather(o, &st);
	if (o->json) {
		if (print_json(o, &st) == -1)
			return (EX_SOFTWARE);
	} else
		print_table(o, &st);
	damaged = st.damaged != NULL;
	json_decref(st.refused);
	json_decref(st.run);
	json_decref(st.damaged);
	if (fflush(stdout) != 0 || damaged)
		return (EX_IOERR);
	if (st.instance == INSTANCE_UNKNOWN)
		return (EXIT_CANNOT_TELL);
	if (stranded(&st))
		return (EXIT_STRANDED);
	return (st.instance == INSTANCE_RUNNING ? 0 : EXIT_NOT_RUNNING);
}
