/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * options.c: parse and check the command line.
 *
 * getopt_long_only(3) gives the Go-flag forms the SDK uses (-datanadhi DIR)
 * and the GNU forms (--datanadhi=DIR) from one table.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "options.h"
#include "util.h"

enum {
	OPT_DIR = 256,
	OPT_API_KEY,
	OPT_HEALTH_URL,
	OPT_SOCKET_MODE,
	OPT_HEALTH_INTERVAL,
	OPT_TIMEOUT,
	OPT_MAX_MESSAGE_SIZE,
	OPT_MAX_SPOOL_SIZE,
	OPT_LOG_LEVEL,
	OPT_KEEP_SESSIONS,
	OPT_REPLAY_CONCURRENCY,
	OPT_REFUSED_TIMEOUT,
	OPT_CACERT,
	OPT_CAPATH,
	OPT_STATUS,
	OPT_JSON,
	OPT_DUMP,
	OPT_SEQ,
	OPT_COUNT,
	OPT_GIVE_UP,
	OPT_REPLAY_ONLY
};

static const struct option long_options[] = {
	{ "datanadhi",		required_argument, NULL, OPT_DIR },
	{ "api-key",		required_argument, NULL, OPT_API_KEY },
	{ "health-url",		required_argument, NULL, OPT_HEALTH_URL },
	{ "socket-mode",	required_argument, NULL, OPT_SOCKET_MODE },
	{ "health-interval",	required_argument, NULL, OPT_HEALTH_INTERVAL },
	{ "timeout",		required_argument, NULL, OPT_TIMEOUT },
	{ "max-message-size",	required_argument, NULL, OPT_MAX_MESSAGE_SIZE },
	{ "max-spool-size",	required_argument, NULL, OPT_MAX_SPOOL_SIZE },
	{ "log-level",		required_argument, NULL, OPT_LOG_LEVEL },
	{ "keep-sessions",	required_argument, NULL, OPT_KEEP_SESSIONS },
	{ "replay-concurrency",	required_argument, NULL, OPT_REPLAY_CONCURRENCY },
	{ "refused-timeout",	required_argument, NULL, OPT_REFUSED_TIMEOUT },
	{ "cacert",		required_argument, NULL, OPT_CACERT },
	{ "capath",		required_argument, NULL, OPT_CAPATH },
	{ "status",		no_argument,	   NULL, OPT_STATUS },
	{ "json",		no_argument,	   NULL, OPT_JSON },
	{ "dump",		no_argument,	   NULL, OPT_DUMP },
	{ "seq",		required_argument, NULL, OPT_SEQ },
	{ "count",		no_argument,	   NULL, OPT_COUNT },
	{ "give-up",		required_argument, NULL, OPT_GIVE_UP },
	{ "replay-only",	no_argument,	   NULL, OPT_REPLAY_ONLY },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL,			0,		   NULL, 0 }
};

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: %s [OPTION]...\n"
"  or:  %s --status [--json] | --dump [--seq N[-M]] [--count]\n"
"  or:  %s --give-up N[-M] | --replay-only [OPTION]...\n"
"Store the Data Nadhi SDK's logs while its server is down, then deliver them.\n"
"\n"
"Options take one or two dashes; a value follows as the next word or after '='.\n"
"  -datanadhi DIR          state directory (default %s)\n"
"  -api-key KEY            API key for the server (default $%s)\n"
"  -health-url URL         server base URL (default %s)\n"
"      --socket-mode MODE  permissions of the socket, octal (default %04o)\n"
"      --health-interval DURATION\n"
"                          first health re-check delay; backs off to ten times\n"
"                          this (default %dms)\n"
"      --timeout DURATION  limit for one HTTP request (default %ds)\n"
"      --max-message-size BYTES\n"
"                          largest SendLog request accepted (default 1M)\n"
"      --max-spool-size BYTES\n"
"                          refuse new logs while the spool holds this much\n"
"                          (default: a quarter of the file system, at most\n"
"                          8G; 0: no limit but the disk's)\n"
"      --log-level LEVEL   error, warn, info or debug (default info)\n"
"      --keep-sessions N   keep the newest N session directories (default %d)\n"
"      --replay-concurrency N\n"
"                          requests in flight at most while replaying; the\n"
"                          number adapts to the server up to N (default %d;\n"
"                          1: one at a time, in strict order)\n"
"      --refused-timeout DURATION\n"
"                          when the server refuses every delivery alike (a\n"
"                          wrong URL or key), keep trying this long, then\n"
"                          exit 75 with the spool kept (default %dm)\n"
"      --cacert FILE       CA certificates to check the server's with\n"
"      --capath DIR        a directory of them (both: as curl(1); default\n"
"                          CURL_CA_BUNDLE or SSL_CERT_FILE, SSL_CERT_DIR)\n"
"\n"
"Admin commands, for DIR (they never touch a running instance's socket):\n"
"      --status            is an instance running, what is spooled, is the\n"
"                          server healthy; exit 0 if running, 3 if not\n"
"      --json              with --status: one JSON object\n"
"      --dump              print the spool, oldest first, as JSON lines\n"
"      --seq N[-M]         with --dump: record N only, or N to M\n"
"      --count             with --dump: print how many records, not them\n"
"      --give-up N[-M]     move records N to M to the failure log unsent\n"
"                          when echopost next delivers; no instance may run\n"
"      --replay-only       deliver the spool without opening the socket,\n"
"                          exit when it is empty\n"
"  -h, --help              display this help and exit\n"
"  -V, --version           output version information and exit\n"
"\n"
"DURATION is a number with ms, s or m (seconds if none); BYTES takes k, M or G.\n"
"Events are JSON lines on standard output and in DIR/session-*/agent.log.\n"
"\n"
"Report bugs to: <%s>\n",
	    PACKAGE, PACKAGE, PACKAGE, DEFAULT_DIR, API_KEY_ENV, DEFAULT_HEALTH_URL,
	    DEFAULT_SOCKET_MODE, DEFAULT_HEALTH_MS, DEFAULT_TIMEOUT_MS / 1000,
	    DEFAULT_KEEP_SESSIONS, DEFAULT_CONCURRENCY,
	    (int)(DEFAULT_REFUSED_TIMEOUT_MS / 60000), PACKAGE_BUGREPORT);
}

static void
version(FILE *out)
{
	fprintf(out,
"%s %s\n"
"Copyright (C) 2026 The EchoPost developers.\n"
"License AGPLv3+: GNU AGPL version 3 or later "
"<https://gnu.org/licenses/agpl.html>.\n"
"This is free software: you are free to change and redistribute it.\n"
"There is NO WARRANTY, to the extent permitted by law.\n",
	    PACKAGE, ECHOPOST_VERSION);
}

static int
replace(char **slot, const char *value)
{
	char	*copy;

	copy = strdup(value);
	if (copy == NULL)
		return (-1);
	free(*slot);
	*slot = copy;
	return (0);
}

static enum options_result
bad_value(FILE *err, const char *option, const char *value, const char *why)
{
	fprintf(err, "%s: invalid value '%s' for -%s: %s\n", PACKAGE, value,
	    option, why);
	fprintf(err, "Try '%s --help' for more information.\n", PACKAGE);
	return (OPTIONS_BAD);
}

/* The admin commands exclude each other. */
static enum options_result
set_mode(struct options *o, int code, FILE *err)
{
	enum mode	mode;

	switch (code) {
	case OPT_STATUS:
		mode = MODE_STATUS;
		break;
	case OPT_DUMP:
		mode = MODE_DUMP;
		break;
	case OPT_REPLAY_ONLY:
		mode = MODE_REPLAY_ONLY;
		break;
	case OPT_GIVE_UP:
		mode = MODE_GIVE_UP;
		break;
	default:
		return (OPTIONS_BAD);
	}
	if (o->mode != MODE_SERVE && o->mode != mode) {
		fprintf(err, "%s: --status, --dump, --give-up and "
		    "--replay-only exclude each other\n", PACKAGE);
		fprintf(err, "Try '%s --help' for more information.\n",
		    PACKAGE);
		return (OPTIONS_BAD);
	}
	o->mode = mode;
	return (OPTIONS_RUN);
}

/* A duration option of least_ms or more, into *out. */
static enum options_result
set_duration(FILE *err, const char *option, const char *value,
    int64_t least_ms, int64_t *out)
{
	const char	*problem;
	char		 why[64];
	int64_t		 ms;

	if ((problem = duration_problem(value, &ms)) == NULL && ms < least_ms) {
		snprintf(why, sizeof why, "less than %lldms",
		    (long long)least_ms);
		problem = why;
	}
	if (problem != NULL)
		return (bad_value(err, option, value, problem));
	*out = ms;
	return (OPTIONS_RUN);
}

/* A size option from least to most bytes (0 too if zero_allowed). */
static enum options_result
set_size(FILE *err, const char *option, const char *value, int64_t least,
    int64_t most, bool zero_allowed, int64_t *out)
{
	const char	*problem;
	char		 why[64];
	int64_t		 bytes;

	if ((problem = size_problem(value, &bytes)) == NULL &&
	    !(zero_allowed && bytes == 0) && (bytes < least || bytes > most)) {
		snprintf(why, sizeof why, "%s %lld bytes%s", bytes < least ?
		    "less than" : "more than", (long long)(bytes < least ?
		    least : most), zero_allowed ? " (0: no limit)" : "");
		problem = why;
	}
	if (problem != NULL)
		return (bad_value(err, option, value, problem));
	*out = bytes;
	return (OPTIONS_RUN);
}

static enum options_result
set_option(struct options *o, int code, const char *value, FILE *err)
{
	const char	*problem;
	char		*end;
	long		 mode;
	enum log_level	 level;

	switch (code) {
	case OPT_DIR:
		if (*value == '\0')
			return (bad_value(err, "datanadhi", value,
			    "must not be empty"));
		o->dir_given = true;
		return (replace(&o->dir, value) == 0 ? OPTIONS_RUN :
		    OPTIONS_BAD);
	case OPT_API_KEY:
		return (replace(&o->api_key, value) == 0 ? OPTIONS_RUN :
		    OPTIONS_BAD);
	case OPT_HEALTH_URL:
		if ((problem = url_problem(value)) != NULL)
			return (bad_value(err, "health-url", value, problem));
		o->health_url_given = true;
		return (replace(&o->health_url, value) == 0 ? OPTIONS_RUN :
		    OPTIONS_BAD);
	case OPT_CACERT:
	case OPT_CAPATH:
		if (access(value, code == OPT_CACERT ? R_OK : R_OK | X_OK) ==
		    -1)
			return (bad_value(err, code == OPT_CACERT ? "cacert" :
			    "capath", value, strerror(errno)));
		return (replace(code == OPT_CACERT ? &o->cacert : &o->capath,
		    value) == 0 ? OPTIONS_RUN : OPTIONS_BAD);
	case OPT_SOCKET_MODE:
		errno = 0;
		mode = strtol(value, &end, 8);
		if (*value == '\0' || *end != '\0' || errno != 0 ||
		    mode < 0 || mode > 0777)
			return (bad_value(err, "socket-mode", value,
			    "not an octal mode from 0 to 0777"));
		/* Connecting to a UNIX socket takes write permission. */
		if ((mode & 0222) == 0)
			return (bad_value(err, "socket-mode", value,
			    "nobody could connect: give write permission to "
			    "the owner at least, as 0600 does"));
		o->socket_mode = (mode_t)mode;
		return (OPTIONS_RUN);
	case OPT_HEALTH_INTERVAL:
		return (set_duration(err, "health-interval", value, 10,
		    &o->health_interval_ms));
	case OPT_TIMEOUT:
		return (set_duration(err, "timeout", value, 1, &o->timeout_ms));
	case OPT_MAX_MESSAGE_SIZE:
		return (set_size(err, "max-message-size", value, 1024,
		    INT32_MAX, false, &o->max_message_size));
	case OPT_MAX_SPOOL_SIZE:
		return (set_size(err, "max-spool-size", value, 1024, INT64_MAX,
		    true, &o->max_spool_size));
	case OPT_LOG_LEVEL:
		if (log_level_parse(value, &level) == -1)
			return (bad_value(err, "log-level", value,
			    "not one of error, warn, info, debug"));
		o->log_level = level;
		return (OPTIONS_RUN);
	case OPT_KEEP_SESSIONS:
		o->keep_sessions = (int)strtonum(value, 1, 100000, &problem);
		if (problem != NULL)
			return (bad_value(err, "keep-sessions", value,
			    "not a number from 1 to 100000"));
		return (OPTIONS_RUN);
	case OPT_REPLAY_CONCURRENCY:
		o->concurrency = (unsigned int)strtonum(value, 1,
		    MAX_CONCURRENCY, &problem);
		if (problem != NULL)
			return (bad_value(err, "replay-concurrency", value,
			    "not a number from 1 to " MAX_CONCURRENCY_TEXT));
		return (OPTIONS_RUN);
	case OPT_REFUSED_TIMEOUT:
		return (set_duration(err, "refused-timeout", value, 1,
		    &o->refused_timeout_ms));
	case OPT_JSON:
		o->json = true;
		return (OPTIONS_RUN);
	case OPT_COUNT:
		o->count = true;
		return (OPTIONS_RUN);
	case OPT_SEQ:
	case OPT_GIVE_UP:
		if (parse_range(value, &o->first_seq, &o->last_seq) == -1)
			return (bad_value(err, code == OPT_SEQ ? "seq" :
			    "give-up", value, "not a record number N or a range "
			    "N-M"));
		if (code == OPT_GIVE_UP)
			break;
		o->seq_given = true;
		return (OPTIONS_RUN);
	}
	return (set_mode(o, code, err));
}

/*
 * The URL as it may be printed: a password in it replaced by "***". One
 * libcurl cannot take apart is shown only if it has no user part at all.
 */
static char *
redact_url(const char *url)
{
	CURLU	*u;
	char	*password = NULL, *out = NULL, *shown;
	bool	 parsed;

	parsed = (u = curl_url()) != NULL &&
	    curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK;
	if (parsed && curl_url_get(u, CURLUPART_PASSWORD, &password, 0) ==
	    CURLUE_OK && (curl_url_set(u, CURLUPART_PASSWORD, "***", 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_URL, &out, 0) !=
	    CURLUE_OK))
		parsed = false;
	if (out != NULL)
		shown = strdup(out);
	else if (parsed || strchr(url, '@') == NULL)
		shown = strdup(url);
	else
		shown = strdup("(a URL with credentials, not shown)");
	curl_free(out);
	curl_free(password);
	curl_url_cleanup(u);
	return (shown);
}

/*
 * An option getopt did not take: unknown, or an abbreviation of several
 * (-d is -datanadhi or -dump). Say which, with the candidates.
 */
static void
refuse_option(FILE *err, const char *arg)
{
	const struct option	*opt;
	const char		*name = arg;
	size_t			 len, matches = 0;

	while (*name == '-')
		name++;
	len = strcspn(name, "=");
	for (opt = long_options; opt->name != NULL; opt++)
		if (len > 0 && strncmp(opt->name, name, len) == 0)
			matches++;
	if (matches < 2) {
		fprintf(err, "%s: unknown option '%s'\n", PACKAGE, arg);
		return;
	}
	fprintf(err, "%s: option '%s' is ambiguous; it could be", PACKAGE,
	    arg);
	for (opt = long_options; opt->name != NULL; opt++)
		if (strncmp(opt->name, name, len) == 0)
			fprintf(err, " -%s", opt->name);
	fputc('\n', err);
}

static enum options_result
set_defaults(struct options *o)
{
	const char	*key, *size, *cacert, *capath;

	memset(o, 0, sizeof *o);
	key = getenv(API_KEY_ENV);
	/* The CA certificates curl(1) itself would use. */
	if ((cacert = getenv("CURL_CA_BUNDLE")) == NULL)
		cacert = getenv("SSL_CERT_FILE");
	capath = getenv("SSL_CERT_DIR");
	if ((cacert != NULL && replace(&o->cacert, cacert) == -1) ||
	    (capath != NULL && replace(&o->capath, capath) == -1))
		return (OPTIONS_BAD);
	if ((size = getenv(JOURNAL_SIZE_ENV)) != NULL &&
	    parse_size(size, &o->journal_size) == -1)
		o->journal_size = 0;
	if (replace(&o->dir, DEFAULT_DIR) == -1 ||
	    replace(&o->health_url, DEFAULT_HEALTH_URL) == -1 ||
	    replace(&o->api_key, key != NULL ? key : "") == -1)
		return (OPTIONS_BAD);
	o->socket_mode = DEFAULT_SOCKET_MODE;
	o->max_spool_size = -1;
	o->health_interval_ms = DEFAULT_HEALTH_MS;
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->max_message_size = DEFAULT_MESSAGE_SIZE;
	o->log_level = LEVEL_INFO;
	o->keep_sessions = DEFAULT_KEEP_SESSIONS;
	o->concurrency = DEFAULT_CONCURRENCY;
	o->refused_timeout_ms = DEFAULT_REFUSED_TIMEOUT_MS;
	return (OPTIONS_RUN);
}

/*
 * Values are copied out of argv: main() overwrites argv with
 * setproctitle(3) so that the API key does not show in ps(1).
 */
enum options_result
options_parse(struct options *o, int argc, char *argv[], FILE *out, FILE *err)
{
	enum options_result	 result;
	int			 code;

	if (set_defaults(o) != OPTIONS_RUN) {
		fprintf(err, "%s: out of memory\n", PACKAGE);
		return (OPTIONS_BAD);
	}
	optind = 0;
	opterr = 0;
	while ((code = getopt_long_only(argc, argv, ":hV", long_options,
	    NULL)) != -1) {
		switch (code) {
		case 'h':
			usage(out);
			return (OPTIONS_DONE);
		case 'V':
			version(out);
			return (OPTIONS_DONE);
		case ':':
			fprintf(err, "%s: option '%s' needs a value\n",
			    PACKAGE, argv[optind - 1]);
			goto bad;
		case '?':
			refuse_option(err, argv[optind - 1]);
			goto bad;
		default:
			result = set_option(o, code, optarg, err);
			if (result != OPTIONS_RUN)
				return (result);
		}
	}
	if (optind < argc) {
		fprintf(err, "%s: unexpected argument '%s'\n", PACKAGE,
		    argv[optind]);
		goto bad;
	}
	/* Never printed: a key is refused without being shown. */
	if (!header_safe(o->api_key)) {
		fprintf(err, "%s: the API key (%s) contains a control "
		    "character\n", PACKAGE, *o->api_key != '\0' &&
		    getenv(API_KEY_ENV) != NULL && strcmp(getenv(API_KEY_ENV),
		    o->api_key) == 0 ? API_KEY_ENV : "-api-key");
		goto bad;
	}
	if (o->json && o->mode != MODE_STATUS) {
		fprintf(err, "%s: --json goes with --status\n", PACKAGE);
		goto bad;
	}
	if ((o->seq_given || o->count) && o->mode != MODE_DUMP) {
		fprintf(err, "%s: --%s goes with --dump\n", PACKAGE,
		    o->count ? "count" : "seq");
		goto bad;
	}
	if ((o->shown_url = redact_url(o->health_url)) == NULL)
		return (OPTIONS_BAD);
	return (OPTIONS_RUN);
bad:
	fprintf(err, "Try '%s --help' for more information.\n", PACKAGE);
	return (OPTIONS_BAD);
}

void
options_free(struct options *o)
{
	free(o->dir);
	free(o->api_key);
	free(o->health_url);
	free(o->shown_url);
	free(o->cacert);
	free(o->capath);
	memset(o, 0, sizeof *o);
}
