/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * options.c: parse and check the command line.
 *
 * getopt_long_only(3) gives the Go-flag forms the SDK uses (-datanadhi DIR)
 * and the GNU forms (--datanadhi=DIR). What it is given, --help, the
 * checks of each value with their messages and the defaults are all made
 * from option_table (options_table.c), by each option's kind.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "options.h"
#include "util.h"

#define KEY_BASE	256	/* getopt's code of option_table[i]: + i */
#define HELP_COLUMN	26	/* where --help's explanations start */
#define HELP_WIDTH	79	/* the longest line of it */
#define WHY_SIZE	128

/* A row's "given" of 0 means none: no flag can sit at offset 0. */
_Static_assert(offsetof(struct options, mode) == 0,
    "struct options must begin with its mode");

static bool
takes_value(const struct option_row *row)
{
	return (row->kind != KIND_FLAG && row->kind != KIND_COMMAND &&
	    row->kind != KIND_HELP && row->kind != KIND_VERSION);
}

static bool
is_number(const struct option_row *row)
{
	return (row->kind == KIND_PERMISSIONS || row->kind == KIND_DURATION ||
	    row->kind == KIND_SIZE || row->kind == KIND_COUNT);
}

/* A most of 0: none but the kind's own (a duration is a day at most). */
static bool
in_bounds(const struct option_row *row, int64_t n)
{
	if (n == 0 && (row->flags & OPTION_NO_LIMIT))
		return (true);
	return (n >= row->least && (row->most == 0 || n <= row->most));
}

/* A number as one would type it: 0600, 10m, 1M. */
static const char *
number_text(const struct option_row *row, int64_t n, char *text,
    size_t size)
{
	static const struct {
		enum option_kind kind;
		int64_t		 scale;
		const char	*unit;
	} units[] = {
		{ KIND_DURATION, 60 * 1000, "m" },
		{ KIND_DURATION, 1000, "s" },
		{ KIND_DURATION, 1, "ms" },
		{ KIND_SIZE, 1 << 30, "G" },
		{ KIND_SIZE, 1 << 20, "M" },
		{ KIND_SIZE, 1 << 10, "k" },
	};
	size_t	i;

	if (row->kind == KIND_PERMISSIONS) {
		snprintf(text, size, "%04llo", (long long)n);
		return (text);
	}
	for (i = 0; i < sizeof units / sizeof units[0]; i++)
		if (units[i].kind == row->kind && n % units[i].scale == 0) {
			snprintf(text, size, "%lld%s",
			    (long long)(n / units[i].scale), units[i].unit);
			return (text);
		}
	snprintf(text, size, "%lld", (long long)n);
	return (text);
}

/* Words from HELP_COLUMN on, wrapped at HELP_WIDTH under HELP_COLUMN. */
static void
print_wrapped(FILE *out, const char *text)
{
	size_t	column = HELP_COLUMN, len;

	while (*text != '\0') {
		len = strcspn(text, " ");
		if (column > HELP_COLUMN && column + 1 + len > HELP_WIDTH) {
			fprintf(out, "\n%*s", HELP_COLUMN, "");
			column = HELP_COLUMN;
		} else if (column > HELP_COLUMN) {
			fputc(' ', out);
			column++;
		}
		fwrite(text, 1, len, out);
		column += len;
		text += len;
		text += strspn(text, " ");
	}
	fputc('\n', out);
}

/* One row of --help: how it is typed, what it does, its default. */
static void
usage_row(FILE *out, const struct option_row *row)
{
	char	text[512], number[32];
	int	column;

	if (row->letter != 0)
		column = fprintf(out, "  -%c, --%s", row->letter, row->name);
	else
		column = fprintf(out, "%s%s", row->flags & OPTION_SDK ?
		    "  -" : "      --", row->name);
	if (row->meta != NULL)
		column += fprintf(out, " %s", row->meta);
	if (column + 2 > HELP_COLUMN)
		fprintf(out, "\n%*s", HELP_COLUMN, "");
	else
		fprintf(out, "%*s", HELP_COLUMN - column, "");
	if (row->env[0] != NULL)
		snprintf(text, sizeof text, "%s (default $%s%s%s)", row->help,
		    row->env[0], row->env[1] != NULL ? " or $" : "",
		    row->env[1] != NULL ? row->env[1] : "");
	else if (row->fallback != NULL && *row->fallback != '\0')
		snprintf(text, sizeof text, "%s (default %s)", row->help,
		    row->fallback);
	else if (is_number(row) && in_bounds(row, row->number))
		snprintf(text, sizeof text, "%s (default %s)", row->help,
		    number_text(row, row->number, number, sizeof number));
	else
		strlcpy(text, row->help, sizeof text);
	print_wrapped(out, text);
}

static void
usage(FILE *out)
{
	const struct option_row	*row;

	fprintf(out,
"Usage: %s [OPTION]...\n"
"  or:  %s --status [--json] | --dump [--seq N[-M]] [--count]\n"
"  or:  %s --give-up N[-M] | --replay-only [OPTION]...\n"
"Store the Data Nadhi SDK's logs while its server is down, then deliver them.\n"
"\n"
"Options take one or two dashes; a value follows as the next word or after '='.\n",
	    PACKAGE, PACKAGE, PACKAGE);
	for (row = option_table; row->name != NULL; row++) {
		if (row->heading != NULL)
			fprintf(out, "\n%s\n", row->heading);
		usage_row(out, row);
	}
	fprintf(out,
"\n"
"DURATION is a number with ms, s or m (seconds if none); BYTES takes k, M or G.\n"
"Events are JSON lines on standard output and in DIR/session-*/agent.log.\n"
"\n"
"Report bugs to: <%s>\n", PACKAGE_BUGREPORT);
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
	return (OPTIONS_BAD);
}

/* The admin commands exclude each other. */
static enum options_result
set_mode(struct options *o, enum mode mode, FILE *err)
{
	if (o->mode != MODE_SERVE && o->mode != mode) {
		fprintf(err, "%s: --status, --dump, --give-up and "
		    "--replay-only exclude each other\n", PACKAGE);
		return (OPTIONS_BAD);
	}
	o->mode = mode;
	return (OPTIONS_RUN);
}

/* Why a number is out of row's bounds (below them if low), in why. */
static const char *
bounds_problem(const struct option_row *row, bool low, char why[WHY_SIZE])
{
	long long	bound = low ? row->least : row->most;
	const char	*side = low ? "less than" : "more than";

	switch (row->kind) {
	case KIND_DURATION:
		snprintf(why, WHY_SIZE, "%s %lldms", side, bound);
		break;
	case KIND_SIZE:
		snprintf(why, WHY_SIZE, "%s %lld bytes%s", side, bound,
		    row->flags & OPTION_NO_LIMIT ? " (0: no limit)" : "");
		break;
	case KIND_PERMISSIONS:
		snprintf(why, WHY_SIZE, "not an octal mode from %#llo to %#llo",
		    (long long)row->least, (long long)row->most);
		break;
	default:
		snprintf(why, WHY_SIZE, "not a number from %lld to %lld",
		    (long long)row->least, (long long)row->most);
		break;
	}
	return (why);
}

/* A duration or size, once read: checked against row's bounds. */
static const char *
set_number(const struct option_row *row, int64_t n, int64_t *at,
    char why[WHY_SIZE])
{
	if (!in_bounds(row, n))
		return (bounds_problem(row, n < row->least, why));
	*at = n;
	return (NULL);
}

static const char *
set_permissions(const struct option_row *row, const char *value,
    mode_t *at, char why[WHY_SIZE])
{
	char	*end;
	long	 mode;

	errno = 0;
	mode = strtol(value, &end, 8);
	if (*value == '\0' || *end != '\0' || errno != 0 ||
	    !in_bounds(row, mode))
		return (bounds_problem(row, mode < row->least, why));
	/* Connecting to a UNIX socket takes write permission. */
	if ((mode & 0222) == 0)
		return ("nobody could connect: give write permission to the "
		    "owner at least, as 0600 does");
	*at = (mode_t)mode;
	return (NULL);
}

/* Check value as row's kind says, and keep it: NULL, or what is wrong. */
static const char *
set_value(struct options *o, const struct option_row *row, const char *value,
    char why[WHY_SIZE])
{
	void		*at = (char *)o + row->value;
	const char	*problem = NULL;
	int64_t		 n;
	enum log_level	 level;

	switch (row->kind) {
	case KIND_TEXT:
		break;
	case KIND_PATH:
		if (*value == '\0')
			return ("must not be empty");
		break;
	case KIND_FILE:
	case KIND_DIRECTORY:
		if (access(value, row->kind == KIND_FILE ? R_OK : R_OK | X_OK)
		    == -1)
			return (strerror(errno));
		break;
	case KIND_URL:
		if ((problem = url_problem(value)) != NULL)
			return (problem);
		break;
	case KIND_PERMISSIONS:
		return (set_permissions(row, value, at, why));
	case KIND_DURATION:
		if ((problem = duration_problem(value, &n)) != NULL)
			return (problem);
		return (set_number(row, n, at, why));
	case KIND_SIZE:
		if ((problem = size_problem(value, &n)) != NULL)
			return (problem);
		return (set_number(row, n, at, why));
	case KIND_COUNT:
		n = strtonum(value, row->least, row->most, &problem);
		if (problem != NULL)
			return (bounds_problem(row, true, why));
		*(int64_t *)at = n;
		return (NULL);
	case KIND_LEVEL:
		if (log_level_parse(value, &level) == -1)
			return ("not one of error, warn, info, debug");
		*(enum log_level *)at = level;
		return (NULL);
	case KIND_RANGE:
		if (parse_range(value, &o->first_seq, &o->last_seq) == -1)
			return ("not a record number N or a range N-M");
		return (NULL);
	case KIND_FLAG:
		*(bool *)at = true;
		return (NULL);
	case KIND_COMMAND:
	case KIND_HELP:
	case KIND_VERSION:
		return (NULL);
	}
	if (replace(at, value) == -1)
		return (strerror(ENOMEM));
	return (NULL);
}

/* An option from the command line, value NULL if it takes none. */
static enum options_result
set_option(struct options *o, const struct option_row *row,
    const char *value, FILE *err)
{
	const char	*problem;
	char		 why[WHY_SIZE];

	if ((problem = set_value(o, row, value, why)) != NULL)
		return (bad_value(err, row->name, value, problem));
	if (row->given != 0)
		*(bool *)((char *)o + row->given) = true;
	if (row->command != MODE_SERVE)
		return (set_mode(o, row->command, err));
	return (OPTIONS_RUN);
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
	const struct option_row	*row;
	const char		*name = arg;
	size_t			 len, matches = 0;

	while (*name == '-')
		name++;
	len = strcspn(name, "=");
	for (row = option_table; row->name != NULL; row++)
		if (len > 0 && strncmp(row->name, name, len) == 0)
			matches++;
	if (matches < 2) {
		fprintf(err, "%s: unknown option '%s'\n", PACKAGE, arg);
		return;
	}
	fprintf(err, "%s: option '%s' is ambiguous; it could be", PACKAGE,
	    arg);
	for (row = option_table; row->name != NULL; row++)
		if (strncmp(row->name, name, len) == 0)
			fprintf(err, " -%s", row->name);
	fputc('\n', err);
}

/* The first of row's environment variables that is set, or NULL. */
static const char *
env_default(const struct option_row *row)
{
	const char	*value = NULL;
	size_t		 i;

	for (i = 0; i < 2 && row->env[i] != NULL && value == NULL; i++)
		value = getenv(row->env[i]);
	return (value);
}

/*
 * Every row's default: a text's from its environment variables as they
 * are (as curl(1) takes them), else its fallback, checked as if it were
 * typed; a number's as it is.
 */
static enum options_result
set_defaults(struct options *o, FILE *err)
{
	const struct option_row	*row;
	const char		*env, *size, *problem;
	char			 why[WHY_SIZE];
	void			*at;

	memset(o, 0, sizeof *o);
	for (row = option_table; row->name != NULL; row++) {
		at = (char *)o + row->value;
		problem = NULL;
		if ((env = env_default(row)) != NULL) {
			if (replace(at, env) == -1)
				problem = strerror(ENOMEM);
		} else if (row->fallback != NULL)
			problem = set_value(o, row, row->fallback, why);
		else if (row->kind == KIND_PERMISSIONS)
			*(mode_t *)at = (mode_t)row->number;
		else if (is_number(row))
			*(int64_t *)at = row->number;
		if (problem != NULL) {
			fprintf(err, "%s: the default of -%s: %s\n", PACKAGE,
			    row->name, problem);
			return (OPTIONS_BAD);
		}
	}
	if ((size = getenv(JOURNAL_SIZE_ENV)) != NULL &&
	    parse_size(size, &o->journal_size) == -1)
		o->journal_size = 0;
	return (OPTIONS_RUN);
}

/* getopt_long_only's table, and its letters, made from option_table. */
static struct option *
getopt_table(char *letters, size_t size)
{
	struct option	*table;
	size_t		 i, n, used = 0;

	for (n = 0; option_table[n].name != NULL; n++)
		;
	if ((table = calloc(n + 1, sizeof *table)) == NULL)
		return (NULL);
	letters[used++] = ':';
	for (i = 0; i < n; i++) {
		table[i].name = option_table[i].name;
		table[i].has_arg = takes_value(&option_table[i]) ?
		    required_argument : no_argument;
		table[i].val = option_table[i].letter != 0 ?
		    option_table[i].letter : KEY_BASE + (int)i;
		if (option_table[i].letter != 0 && used + 1 < size)
			letters[used++] = (char)option_table[i].letter;
	}
	letters[used] = '\0';
	return (table);
}

/* The row getopt's code stands for. */
static const struct option_row *
row_of(int code)
{
	const struct option_row	*row;

	if (code >= KEY_BASE)
		return (&option_table[code - KEY_BASE]);
	for (row = option_table; row->letter != code; row++)
		;
	return (row);
}

/* The options given, over the defaults; on OPTIONS_BAD err says why. */
static enum options_result
read_options(struct options *o, int argc, char *argv[], FILE *out, FILE *err)
{
	const struct option_row	*row;
	struct option		*table;
	enum options_result	 result = OPTIONS_RUN;
	char			 letters[16];
	int			 code;

	if ((table = getopt_table(letters, sizeof letters)) == NULL) {
		fprintf(err, "%s: out of memory\n", PACKAGE);
		return (OPTIONS_BAD);
	}
	optind = 0;
	opterr = 0;
	while (result == OPTIONS_RUN && (code = getopt_long_only(argc, argv,
	    letters, table, NULL)) != -1) {
		if (code == ':') {
			fprintf(err, "%s: option '%s' needs a value\n",
			    PACKAGE, argv[optind - 1]);
			result = OPTIONS_BAD;
		} else if (code == '?') {
			refuse_option(err, argv[optind - 1]);
			result = OPTIONS_BAD;
		} else if ((row = row_of(code))->kind == KIND_HELP) {
			usage(out);
			result = OPTIONS_DONE;
		} else if (row->kind == KIND_VERSION) {
			version(out);
			result = OPTIONS_DONE;
		} else
			result = set_option(o, row, optarg, err);
	}
	free(table);
	if (result == OPTIONS_RUN && optind < argc) {
		fprintf(err, "%s: unexpected argument '%s'\n", PACKAGE,
		    argv[optind]);
		result = OPTIONS_BAD;
	}
	return (result);
}

/*
 * Values are copied out of argv: main() overwrites argv with
 * setproctitle(3) so that the API key does not show in ps(1).
 */
enum options_result
options_parse(struct options *o, int argc, char *argv[], FILE *out, FILE *err)
{
	enum options_result	 result;

	if ((result = set_defaults(o, err)) != OPTIONS_RUN ||
	    (result = read_options(o, argc, argv, out, err)) == OPTIONS_DONE)
		return (result);
	if (result != OPTIONS_RUN)
		goto bad;
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
