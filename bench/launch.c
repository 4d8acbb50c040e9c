/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * launch: run one server (echopost or noop-server), time it, measure it.
 *
 *	launch [-eq] [-g signal] [-l log] [-p pidfile] [-s socket]
 *	    [-t seconds] [-T timeout] -- command [argument ...]
 *
 * Times are in ms from just before fork(2):
 *	socket_ms	the socket file exists (what the SDK waits for)
 *	ready_ms	a SendLog on a new channel was stored (with -q: the
 *			socket exists; without -s: at once)
 *	stop_ms		launch sent the stop signal
 *	exit_ms		the child is gone
 * The child is stopped with signal (SIGTERM unless -g):
 *	-e	as soon as it is ready (startup),
 *	-t	seconds after it is ready (idle cost, a bounded replay),
 *	-T	timeout seconds after the start in any case (default 900),
 *	or when launch itself gets SIGTERM or SIGINT (the driving script's
 *	"stop it now"). Otherwise launch waits until the child exits.
 * Just before it stops the child, launch reads the child's VmHWM and the
 * CPU time and context switches of all its threads since it was ready;
 * wait4(2) gives the peak RSS and CPU time of the whole run. One JSON
 * object on stdout; the child's output goes to log (or /dev/null), its
 * pid to pidfile, so that a script can still kill it if launch is killed.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>

#include "call.h"
#include "payload.h"

/* Fine enough to time a start of a few ms, cheap enough not to skew it. */
#define POLL_NS		(250 * 1000)
#define READY_TRY_MS	1000
#define KILL_GRACE_NS	(30LL * 1000000000)

struct usage {
	long long	ticks;		/* utime + stime of every thread */
	long long	switches;	/* context switches of every thread */
};

struct options {
	const char	*socket;
	const char	*log;
	const char	*pid_file;
	bool		 socket_only;	/* -q */
	bool		 stop_at_ready;	/* -e */
	double		 run_after_ready;	/* -t, < 0: not set */
	double		 timeout;
	int		 signo;
	char		**argv;
};

struct child {
	pid_t		 pid;
	int64_t		 start_ns;
	int64_t		 socket_ns;
	int64_t		 ready_ns;
	int64_t		 stop_ns;
	int64_t		 exit_ns;
	bool		 timed_out;
	bool		 killed;
	long		 hwm_kib;
	struct usage	 at_ready;
	struct usage	 at_stop;
	int		 status;
	struct rusage	 rusage;
	char		*target;
	grpc_completion_queue *queue;
	grpc_byte_buffer *request;
};

static sigset_t	watched;

static long long
status_field(const char *path, const char *name)
{
	FILE		*f;
	char		 line[256];
	size_t		 len = strlen(name);
	long long	 value = -1;

	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, name, len) == 0) {
			value = strtoll(line + len, NULL, 10);
			break;
		}
	fclose(f);
	return (value);
}

/* utime + stime of the whole process: fields 14 and 15 of stat. */
static long long
cpu_ticks(pid_t pid)
{
	FILE		*f;
	char		 path[64], line[1024], *p;
	long long	 utime, stime;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	p = fgets(line, sizeof line, f);
	fclose(f);
	/* The command name may hold spaces: count from its ')'. */
	if (p == NULL || (p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%lld %lld", &utime, &stime) != 2)
		return (-1);
	return (utime + stime);
}

static long long
context_switches(pid_t pid)
{
	DIR		*dir;
	struct dirent	*entry;
	char		 path[300];
	long long	 sum = 0, v, n;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return (-1);
	while ((entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/status",
		    (int)pid, entry->d_name);
		v = status_field(path, "voluntary_ctxt_switches:");
		n = status_field(path, "nonvoluntary_ctxt_switches:");
		sum += (v > 0 ? v : 0) + (n > 0 ? n : 0);
	}
	closedir(dir);
	return (sum);
}

static void
sample(pid_t pid, struct usage *u)
{
	u->ticks = cpu_ticks(pid);
	u->switches = context_switches(pid);
}

static void
write_pid(const char *path, pid_t pid)
{
	FILE	*f;

	if (path == NULL)
		return;
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		return;
	}
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
}

static void
start_child(struct child *c, const struct options *o)
{
	sigset_t	none;
	int		fd;

	c->start_ns = now_ns();
	if ((c->pid = fork()) == -1) {
		perror("launch: fork");
		exit(1);
	}
	if (c->pid != 0) {
		write_pid(o->pid_file, c->pid);
		return;
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if ((fd = open("/dev/null", O_RDONLY)) != -1)
		dup2(fd, STDIN_FILENO);
	fd = open(o->log != NULL ? o->log : "/dev/null",
	    O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	execvp(o->argv[0], o->argv);
	_exit(127);
}

/* One step towards "ready": the socket file, then a stored call. */
static void
try_ready(struct child *c, const struct options *o)
{
	struct stat		 sb;
	grpc_channel		*channel;
	enum call_result	 result;

	if (o->socket == NULL) {
		c->ready_ns = c->start_ns;
		return;
	}
	if (c->socket_ns == 0) {
		if (stat(o->socket, &sb) == -1)
			return;
		c->socket_ns = now_ns();
		if (o->socket_only) {
			c->ready_ns = c->socket_ns;
			return;
		}
	}
	channel = call_channel(c->target);
	result = call_send(channel, c->queue, c->request, READY_TRY_MS);
	grpc_channel_destroy(channel);
	if (result == CALL_STORED)
		c->ready_ns = now_ns();
}

/*
 * The client is set up before the child starts, so that "ready" times the
 * server and a first call, not our own grpc_init(). The child only execs,
 * so forking with gRPC's threads about is safe.
 */
static void
prepare_client(struct child *c, const struct options *o)
{
	if (o->socket == NULL || o->socket_only)
		return;
	if (asprintf(&c->target, "unix:%s", o->socket) == -1)
		exit(1);
	grpc_init();
	c->queue = grpc_completion_queue_create_for_pluck(NULL);
	if ((c->request = call_request(0, 0, 300)) == NULL)
		exit(1);
}

static void
finish_client(struct child *c)
{
	if (c->queue == NULL)
		return;
	grpc_byte_buffer_destroy(c->request);
	grpc_completion_queue_shutdown(c->queue);
	grpc_completion_queue_destroy(c->queue);
	grpc_shutdown();
	free(c->target);
}

static long long
peak_rss_kib(pid_t pid)
{
	char	path[64];

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	return (status_field(path, "VmHWM:"));
}

static void
stop_child(struct child *c, int signo)
{
	c->hwm_kib = (long)peak_rss_kib(c->pid);
	sample(c->pid, &c->at_stop);
	c->stop_ns = now_ns();
	kill(c->pid, signo);
}

/* Should the child be stopped now, and with which signal? 0 if not. */
static int
stop_signal(struct child *c, const struct options *o, int taken)
{
	int64_t	now = now_ns();

	if (taken == SIGTERM || taken == SIGINT)
		return (o->signo);
	if (now - c->start_ns > (int64_t)(o->timeout * 1e9)) {
		c->timed_out = true;
		return (SIGTERM);
	}
	if (c->ready_ns == 0)
		return (0);
	if (o->stop_at_ready)
		return (o->signo);
	if (o->run_after_ready >= 0 &&
	    now - c->ready_ns >= (int64_t)(o->run_after_ready * 1e9))
		return (o->signo);
	return (0);
}

static bool
reaped(struct child *c)
{
	pid_t	pid;

	pid = wait4(c->pid, &c->status, WNOHANG, &c->rusage);
	if (pid != c->pid)
		return (false);
	c->exit_ns = now_ns();
	return (true);
}

/*
 * Until the child is gone: look for it to be ready, stop it when told to,
 * kill it if it does not go. sigtimedwait() wakes early on SIGCHLD, so the
 * exit is timed to the poll, not to the sleep.
 */
static void
watch(struct child *c, const struct options *o)
{
	struct timespec	pause;
	int		taken = 0, signo;

	while (!reaped(c)) {
		if (c->stop_ns == 0 &&
		    (signo = stop_signal(c, o, taken)) != 0)
			stop_child(c, signo);
		else if (c->stop_ns != 0 && !c->killed &&
		    now_ns() - c->stop_ns > KILL_GRACE_NS) {
			kill(c->pid, SIGKILL);
			c->killed = true;
		}
		if (c->ready_ns == 0 && c->stop_ns == 0) {
			try_ready(c, o);
			if (c->ready_ns != 0)
				sample(c->pid, &c->at_ready);
		}
		pause.tv_sec = 0;
		pause.tv_nsec = c->ready_ns == 0 ? POLL_NS : 10 * 1000000;
		taken = sigtimedwait(&watched, NULL, &pause);
	}
}

static double
ms_since(const struct child *c, int64_t ns)
{
	return (ns == 0 ? -1 : (double)(ns - c->start_ns) / 1e6);
}

static double
seconds(struct timeval tv)
{
	return ((double)tv.tv_sec + (double)tv.tv_usec / 1e6);
}

static void
report(const struct child *c)
{
	double	window = -1, cpu = -1;
	long	tick = sysconf(_SC_CLK_TCK);
	long long switches = -1;
	int	status;

	if (c->ready_ns != 0 && c->stop_ns != 0 && c->at_ready.ticks >= 0 &&
	    c->at_stop.ticks >= 0) {
		window = (double)(c->stop_ns - c->ready_ns) / 1e9;
		cpu = (double)(c->at_stop.ticks - c->at_ready.ticks) / tick;
		switches = c->at_stop.switches - c->at_ready.switches;
	}
	status = WIFEXITED(c->status) ? WEXITSTATUS(c->status) :
	    -WTERMSIG(c->status);
	printf("{\"status\": %d, \"timed_out\": %s, \"socket_ms\": %.3f, "
	    "\"ready_ms\": %.3f, \"stop_ms\": %.3f, \"exit_ms\": %.3f, "
	    "\"window_s\": %.3f, \"window_cpu_s\": %.3f, "
	    "\"window_switches\": %lld, \"hwm_kib\": %ld, "
	    "\"maxrss_kib\": %ld, \"user_s\": %.3f, \"sys_s\": %.3f}\n",
	    status, c->timed_out ? "true" : "false", ms_since(c, c->socket_ns),
	    ms_since(c, c->ready_ns), ms_since(c, c->stop_ns),
	    ms_since(c, c->exit_ns), window, cpu, switches, c->hwm_kib,
	    c->rusage.ru_maxrss, seconds(c->rusage.ru_utime),
	    seconds(c->rusage.ru_stime));
}

static void
usage(void)
{
	fprintf(stderr, "usage: launch [-eq] [-g signal] [-l log] "
	    "[-p pidfile] [-s socket] [-t seconds] [-T timeout] -- "
	    "command ...\n");
	exit(2);
}

static double
number(const char *text)
{
	char	*end;
	double	 value;

	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || value < 0)
		usage();
	return (value);
}

static void
parse(struct options *o, int argc, char *argv[])
{
	int	ch;

	memset(o, 0, sizeof *o);
	o->run_after_ready = -1;
	o->timeout = 900;
	o->signo = SIGTERM;
	while ((ch = getopt(argc, argv, "eg:l:p:qs:t:T:")) != -1) {
		switch (ch) {
		case 'e':
			o->stop_at_ready = true;
			break;
		case 'g':
			o->signo = (int)number(optarg);
			break;
		case 'l':
			o->log = optarg;
			break;
		case 'p':
			o->pid_file = optarg;
			break;
		case 'q':
			o->socket_only = true;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 't':
			o->run_after_ready = number(optarg);
			break;
		case 'T':
			o->timeout = number(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	o->argv = argv + optind;
}

int
main(int argc, char *argv[])
{
	struct options	o;
	struct child	c;

	parse(&o, argc, argv);
	memset(&c, 0, sizeof c);
	prepare_client(&c, &o);
	/* Taken with sigtimedwait(), never delivered: no handlers. */
	sigemptyset(&watched);
	sigaddset(&watched, SIGCHLD);
	sigaddset(&watched, SIGTERM);
	sigaddset(&watched, SIGINT);
	sigprocmask(SIG_BLOCK, &watched, NULL);
	start_child(&c, &o);
	watch(&c, &o);
	report(&c);
	finish_client(&c);
	return (0);
}
