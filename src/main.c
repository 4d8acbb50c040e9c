/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * main.c: the life cycle of one echopost run.
 *
 *	lock DIR -> open the spool -> listen -> forward
 *	spool empty and server healthy -> stop listening -> deliver the rest
 *	-> remove socket, status lock and spool -> exit 0
 *	SIGINT, SIGTERM, SIGHUP -> stop listening -> keep the spool -> exit 0
 *
 * Signals are blocked in every thread and taken with sigtimedwait(2) here,
 * between polls of the listener or waits for the forwarder (at most
 * POLL_MS): no handler, nothing async-signal-unsafe.
 */
#include "config.h"

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <sysexits.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "admin.h"
#include "dir.h"
#include "echopost.h"
#include "forwarder.h"
#include "listener.h"
#include "log.h"
#include "options.h"
#include "session.h"
#include "spool.h"
#include "util.h"

#define POLL_MS	100
#define DRAINED	"spool drained"
#define SPOOL_LIMIT_MAX	(8ULL * 1024 * 1024 * 1024)

/* Names under DIR, for people: nothing is opened by them. */
struct paths {
	char	dir[PATH_MAX];
	char	socket[PATH_MAX];
	char	spool[PATH_MAX];
};

/* The signals that stop a run: blocked everywhere, taken by main. */
static sigset_t	stop_signals;

struct run {
	const struct options	*options;
	struct paths		 paths;
	struct dir_check	 dir;
	struct dir_lock		*lock;
	struct session		*session;
	struct spool		*spool;
	struct listener		*listener;
	struct forwarder	*forwarder;
	struct listener_counts	 counts;
	uint64_t		 quarantined;	/* damaged records kept */
};

/* A fatal error before the run is under way: stderr and the event log. */
static int
fatal(int status, const char *what, const char *path, const char *error)
{
	warnx("%s %s: %s", what, path, error);
	log_event(LEVEL_ERROR, "fatal", "{s:s, s:s, s:s, s:i}", "what", what,
	    "path", path, "error", error, "exit", status);
	return (status);
}

/*
 * Open DIR, and make it the working directory for good: the socket is
 * bound by a name relative to it, so no path to DIR is walked again.
 */
static int
open_dir(struct run *run)
{
	struct paths	*p = &run->paths;
	int		 status;

	/* --replay-only never makes a DIR: a missing one is a mistake. */
	if ((status = dir_open(run->options->dir, run->options->mode !=
	    MODE_REPLAY_ONLY, &run->dir)) != 0) {
		warnx("%s", run->dir.error);
		log_event(LEVEL_ERROR, "fatal", "{s:s, s:i}", "error",
		    run->dir.error, "exit", status);
		return (status);
	}
	/* The SDK always names DIR: a person may not know the default. */
	if (!run->options->dir_given)
		warnx("no -datanadhi given: using %s", run->dir.path);
	if (fchdir(run->dir.fd) == -1)
		return (fatal(EX_OSERR, "cannot enter", run->dir.path,
		    strerror(errno)));
	strlcpy(p->dir, run->dir.path, sizeof p->dir);
	if (dir_file(p->socket, p->dir, SOCKET_NAME) == -1 ||
	    dir_file(p->spool, p->dir, SPOOL_NAME) == -1)
		return (fatal(EX_USAGE, "path too long", p->dir,
		    strerror(ENAMETOOLONG)));
	return (0);
}

/* 0 when this run holds DIR; 1 when another one does. */
static int
lock_dir(struct run *run)
{
	pid_t	other = -1;
	int	taken;

	if ((taken = dir_lock(&run->lock, run->dir.fd, &other)) == 1) {
		log_event(LEVEL_INFO, "already_running", "{s:s, s:i}", "dir",
		    run->paths.dir, "pid", (int)other);
		/* For the SDK a second instance is fine; for a person not. */
		if (run->options->mode == MODE_REPLAY_ONLY) {
			warnx("%s is in use by echopost (pid %ld); try again "
			    "once it has finished", run->paths.dir,
			    (long)other);
			return (EX_TEMPFAIL);
		}
	} else if (taken == -1)
		return (fatal(EX_CANTCREAT, "cannot lock", PID_FILE_NAME,
		    errno == ELOOP ? "it is a symbolic link" : errno == EPERM ?
		    "not a regular file of this user's alone: remove it" :
		    strerror(errno)));
	return (taken);
}

/*
 * No client may fill the file system: by default the spool takes at most
 * a quarter of it, and never more than SPOOL_LIMIT_MAX.
 */
static uint64_t
spool_limit(const struct run *run)
{
	struct statvfs	fs;
	uint64_t	quarter;

	if (run->options->max_spool_size >= 0)
		return ((uint64_t)run->options->max_spool_size);
	if (fstatvfs(run->dir.fd, &fs) == -1)
		return (SPOOL_LIMIT_MAX);
	quarter = (uint64_t)fs.f_blocks * fs.f_frsize / 4;
	return (quarter < SPOOL_LIMIT_MAX ? quarter : SPOOL_LIMIT_MAX);
}

static int
open_everything(struct run *run)
{
	const struct options	*o = run->options;
	struct listener_config	 listen;
	struct store		 store;
	char			 cause[CAUSE_SIZE];

	if ((run->session = session_open(run->dir.fd, run->paths.dir,
	    cause)) == NULL)
		return (fatal(EX_CANTCREAT, "cannot open session in",
		    run->paths.dir, cause));
	log_event(LEVEL_INFO, "start", "{s:s, s:i, s:s, s:s, s:s, s:s}",
	    "version", ECHOPOST_VERSION, "pid", (int)getpid(),
	    "dir", run->paths.dir, "health_url", o->shown_url,
	    "session", session_path(run->session), "mode",
	    o->mode == MODE_REPLAY_ONLY ? "replay-only" : "serve");
	if (run->dir.became_owner)
		log_event(LEVEL_WARN, "became_owner", "{s:s, s:i, s:i}", "dir",
		    run->paths.dir, "uid", (int)getuid(), "gid", (int)getgid());
	session_prune(run->session, (int)o->keep_sessions);
	if ((run->spool = spool_open(run->dir.fd, run->paths.spool,
	    spool_limit(run), (off_t)o->journal_size, cause)) == NULL)
		return (fatal(EX_IOERR, "cannot open spool", run->paths.spool,
		    cause));
	if (o->mode == MODE_REPLAY_ONLY) {
		listener_remove_stale(run->dir.fd);
		return (0);
	}
	if (session_set_server_down(run->session, true) == -1)
		log_event(LEVEL_WARN, "status_lock_error", "{s:s}", "error",
		    strerror(errno));
	listen.dirfd = run->dir.fd;
	listen.socket_mode = o->socket_mode;
	listen.max_message_size = o->max_message_size;
	spool_store(run->spool, &store);
	if ((run->listener = listener_start(&listen, &store, cause)) == NULL)
		return (fatal(EX_IOERR, "cannot listen on", run->paths.socket,
		    cause));
	log_event(LEVEL_INFO, "listening", "{s:s, s:I}", "socket",
	    run->paths.socket, "spooled",
	    (json_int_t)spool_count(run->spool));
	if (o->socket_mode & S_IWOTH) {
		warnx("--socket-mode %04o: every user on this host can send "
		    "logs with this instance's API key", (unsigned)
		    o->socket_mode);
		log_event(LEVEL_WARN, "socket_open_to_all", "{s:s, s:s}",
		    "socket", run->paths.socket, "meaning", "every user on "
		    "this host can send logs with the API key");
	}
	/* Served all the same: a client may connect from DIR by name. */
	if (strlen(run->paths.socket) > SOCKET_PATH_MAX)
		log_event(LEVEL_WARN, "socket_path_long", "{s:s, s:i, s:s}",
		    "socket", run->paths.socket, "most", SOCKET_PATH_MAX,
		    "meaning", "a client that connects by this path fails: "
		    "choose a shorter -datanadhi directory");
	return (0);
}

static int
start_forwarder(struct run *run)
{
	char	cause[CAUSE_SIZE];

	/* After the socket is up: TLS set-up costs milliseconds at start. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return (fatal(EX_SOFTWARE, "cannot start", "libcurl",
		    "curl_global_init failed"));
	/* A progress bar only for a person at a terminal. */
	if ((run->forwarder = forwarder_start(run->options,
	    isatty(STDERR_FILENO), run->spool, run->session, cause)) == NULL)
		return (fatal(EX_SOFTWARE, "cannot start", "forwarder",
		    cause));
	return (0);
}

/* A stop signal that is pending, or 0: it does not wait. */
static int
take_signal(void)
{
	int	signo;

	if ((signo = compat_signal_take(&stop_signals)) > 0)
		log_event(LEVEL_INFO, "signal", "{s:s}", "signal",
		    strsignal(signo));
	return (signo > 0 ? signo : 0);
}

/*
 * Serve until a signal, until the forwarder has drained the spool, or has
 * given up on a server that refuses everything: the reason.
 */
static const char *
serve(struct run *run)
{
	for (;;) {
		if (listener_poll(run->listener, POLL_MS) == -1)
			return ("listener failed");
		listener_keep_socket(run->listener);
		if (take_signal() != 0)
			return ("signal");
		if (forwarder_wants_drain(run->forwarder))
			return (DRAINED);
		if (forwarder_done(run->forwarder, 0))
			return ("replay given up");
	}
}

static int
run_agent(struct run *run)
{
	enum forwarder_result	result;
	uint64_t		rejected;
	const char		*reason;

	if (run->listener != NULL) {
		reason = serve(run);
		if (strcmp(reason, DRAINED) != 0)
			forwarder_stop(run->forwarder);
		log_event(LEVEL_INFO, "stop_listening", "{s:s}", "reason",
		    reason);
		listener_close(run->listener, &run->counts);
		run->listener = NULL;
	}
	forwarder_listener_closed(run->forwarder);
	while (!forwarder_done(run->forwarder, POLL_MS))
		if (take_signal() != 0)
			forwarder_stop(run->forwarder);
	result = forwarder_join(run->forwarder, &rejected, &run->quarantined);
	run->forwarder = NULL;
	if (result == FORWARDER_FAILED)
		return (EX_SOFTWARE);
	/* The next outage's run tries again: the spool is kept for it. */
	if (result == FORWARDER_REFUSED) {
		warnx("the server refused every delivery for %gs; the spool "
		    "is kept (see %s --status)",
		    run->options->refused_timeout_ms / 1000.0, PACKAGE);
		return (EX_TEMPFAIL);
	}
	/* --replay-only: someone waits for the verdict on these records. */
	if (result == FORWARDER_STOPPED && run->options->mode ==
	    MODE_REPLAY_ONLY && spool_count(run->spool) > 0) {
		warnx("stopped with %ju records still in the spool; run %s "
		    "--replay-only again to deliver them",
		    (uintmax_t)spool_count(run->spool), PACKAGE);
		return (EX_TEMPFAIL);
	}
	if (rejected > 0 && run->options->mode == MODE_REPLAY_ONLY) {
		warnx("the server refused %llu records for good; they are in "
		    "%s/%s", (unsigned long long)rejected,
		    session_path(run->session), FAILURE_LOG_NAME);
		return (EX_DATAERR);
	}
	return (0);
}

/*
 * Records the spool could not read were lost to damage, or were damaged
 * and kept aside: a run that could not deliver all it held fails, and
 * says where to look.
 */
static int
records_lost(const struct run *run, uint64_t missing, uint64_t maybe)
{
	if (missing + maybe > 0)
		warnx("%ju stored records could not be read (damaged or "
		    "unreadable spool files), and up to %ju more where the end "
		    "of a journal could not be read: record_missing events in "
		    "%s/%s name them, and the files are kept in %s as "
		    "*.damaged-*", (uintmax_t)missing, (uintmax_t)maybe,
		    session_path(run->session), EVENT_LOG_NAME,
		    run->paths.dir);
	if (run->quarantined > 0)
		warnx("%ju stored records were damaged and not sent: they "
		    "are kept in %s/%s", (uintmax_t)run->quarantined,
		    run->paths.dir, QUARANTINE_NAME);
	return (EX_IOERR);
}

/* Returns the exit status: a spool that could not be closed is an error. */
static int
close_everything(struct run *run, int status)
{
	uint64_t	left = 0, missing = 0, maybe = 0, rejected;

	if (run->forwarder != NULL) {
		forwarder_stop(run->forwarder);
		forwarder_join(run->forwarder, &rejected, &run->quarantined);
	}
	listener_close(run->listener, NULL);
	if (run->spool != NULL) {
		left = spool_count(run->spool);
		missing = spool_missing(run->spool, &maybe);
		if (missing + maybe + run->quarantined > 0 && status == 0)
			status = records_lost(run, missing, maybe);
		if (spool_close(run->spool, 1) == -1 && status == 0)
			status = EX_IOERR;
	}
	if (run->session != NULL)
		log_event(LEVEL_INFO, "exit",
		    "{s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
		    "status", status, "stored", (json_int_t)run->counts.stored,
		    "refused", (json_int_t)run->counts.refused,
		    "spooled", (json_int_t)left,
		    "missing", (json_int_t)missing,
		    "maybe_missing", (json_int_t)maybe,
		    "quarantined", (json_int_t)run->quarantined);
	session_close(run->session);
	dir_unlock(run->lock);
	if (run->dir.fd != -1)
		close(run->dir.fd);
	return (status);
}

/*
 * Every SDK call is a new connection, and a full file table makes opening
 * a spool file fail: take all the descriptors the hard limit allows.
 */
static void
raise_file_limit(void)
{
	struct rlimit	rl;
	int		status;

	if ((status = getrlimit(RLIMIT_NOFILE, &rl)) == 0 &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		status = setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (status == -1)
		log_event(LEVEL_WARN, "file_limit_error", "{s:s}", "error",
		    strerror(errno));
}

static int
run(const struct options *o)
{
	struct run	run;
	int		status;

	memset(&run, 0, sizeof run);
	run.options = o;
	if ((status = open_dir(&run)) != 0)
		return (status);
	if ((status = lock_dir(&run)) != 0)
		return (status == 1 ? 0 : status);
	umask(077);
	raise_file_limit();
	if ((status = open_everything(&run)) == 0 &&
	    (status = start_forwarder(&run)) == 0)
		status = run_agent(&run);
	return (close_everything(&run, status));
}

static void
free_args(char **args)
{
	char	**p;

	for (p = args; *p != NULL; p++)
		free(*p);
	free(args);
}

static char **
copy_args(int argc, char *argv[])
{
	char	**args;
	int	  i;

	if ((args = calloc((size_t)argc + 1, sizeof *args)) == NULL)
		return (NULL);
	for (i = 0; i < argc; i++)
		if ((args[i] = strdup(argv[i])) == NULL) {
			free_args(args);
			return (NULL);
		}
	return (args);
}

int
main(int argc, char *argv[])
{
	struct options	  options;
	char		**args;
	int		  status;

	/*
	 * The SDK passes the API key on the command line, where other users
	 * can read it (ps(1), /proc): hide it before anything else, and
	 * parse a copy.
	 */
	if ((args = copy_args(argc, argv)) == NULL) {
		warnx("out of memory");
		return (EX_SOFTWARE);
	}
	compat_setproctitle_init(argc, argv);
	setproctitle("-%s", PACKAGE);
	status = options_parse(&options, argc, args, stdout, stderr);
	free_args(args);
	switch (status) {
	case OPTIONS_RUN:
		break;
	case OPTIONS_DONE:
		options_free(&options);
		return (fflush(stdout) == 0 ? 0 : EX_IOERR);
	case OPTIONS_BAD:
		options_free(&options);
		return (EX_USAGE);
	}
	log_set_level(options.log_level);
	if (options.mode != MODE_SERVE && options.mode != MODE_REPLAY_ONLY) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			status = EX_SOFTWARE;
		else if (options.mode == MODE_STATUS)
			status = admin_status(&options);
		else if (options.mode == MODE_DUMP)
			status = admin_dump(&options);
		else
			status = admin_give_up(&options);
		curl_global_cleanup();
		options_free(&options);
		return (status);
	}
	/* The key was on the command line: take it out of ps(1). */
	setproctitle("-%s -datanadhi %s", PACKAGE, options.dir);

	/* Before any thread exists, so that every thread inherits it. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	/* An admin's terminal that goes away stops it as cleanly. */
	sigaddset(&stop_signals, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		warnx("cannot initialise");
		options_free(&options);
		return (EX_SOFTWARE);
	}
	status = run(&options);
	curl_global_cleanup();
	options_free(&options);
	return (status);
}
