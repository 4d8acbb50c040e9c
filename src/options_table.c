/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * options_table.c: every option echopost takes, one row each: its name,
 * kind, bounds, default and help. options.c makes the rest from it.
 *
 * The order is the order of --help, and of the candidates named for an
 * ambiguous abbreviation (-d: -datanadhi -dump).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "options.h"

#define AT(field)	offsetof(struct options, field)

/* Defaults the tests read (tests/support.py, c_define). */
#define DEFAULT_MESSAGE_SIZE	(1024 * 1024)
#define DEFAULT_KEEP_SESSIONS	20

const struct option_row option_table[] = {
	{ .name = "datanadhi", .kind = KIND_PATH, .value = AT(dir),
	  .given = AT(dir_given), .fallback = "./.datanadhi",
	  .flags = OPTION_SDK, .meta = "DIR",
	  .help = "state directory" },
	{ .name = "api-key", .kind = KIND_TEXT, .value = AT(api_key),
	  .fallback = "", .env = { API_KEY_ENV }, .flags = OPTION_SDK,
	  .meta = "KEY",
	  .help = "API key for the server" },
	{ .name = "health-url", .kind = KIND_URL, .value = AT(health_url),
	  .given = AT(health_url_given),
	  .fallback = "http://data-nadhi-server:5000", .flags = OPTION_SDK,
	  .meta = "URL",
	  .help = "server base URL" },
	{ .name = "socket-mode", .kind = KIND_PERMISSIONS,
	  .value = AT(socket_mode), .least = 0, .most = 0777,
	  .number = 0600, .meta = "MODE",
	  .help = "permissions of the socket, octal" },
	{ .name = "health-interval", .kind = KIND_DURATION,
	  .value = AT(health_interval_ms), .least = 10, .number = 500,
	  .meta = "DURATION",
	  .help = "first health re-check delay; backs off to ten times "
	  "this" },
	/*
	 * The SDK waits 10 s for the same server: a shorter limit would
	 * resend, as duplicates, logs that a server slower than ours but
	 * quick enough for the SDK had accepted.
	 */
	{ .name = "timeout", .kind = KIND_DURATION, .value = AT(timeout_ms),
	  .least = 1, .number = 10 * 1000, .meta = "DURATION",
	  .help = "limit for one HTTP request" },
	{ .name = "max-message-size", .kind = KIND_SIZE,
	  .value = AT(max_message_size), .least = 1024, .most = INT32_MAX,
	  .number = DEFAULT_MESSAGE_SIZE, .meta = "BYTES",
	  .help = "largest SendLog request accepted" },
	/* -1: main.c works the limit out from the disk. */
	{ .name = "max-spool-size", .kind = KIND_SIZE,
	  .value = AT(max_spool_size), .least = 1024, .most = INT64_MAX,
	  .number = -1, .flags = OPTION_NO_LIMIT, .meta = "BYTES",
	  .help = "refuse new logs while the spool holds this much "
	  "(default: a quarter of the file system, at most 8G; 0: no limit "
	  "but the disk's)" },
	{ .name = "log-level", .kind = KIND_LEVEL, .value = AT(log_level),
	  .fallback = "info", .meta = "LEVEL",
	  .help = "error, warn, info or debug" },
	{ .name = "keep-sessions", .kind = KIND_COUNT,
	  .value = AT(keep_sessions), .least = 1, .most = 100000,
	  .number = DEFAULT_KEEP_SESSIONS, .meta = "N",
	  .help = "keep the newest N session directories" },
	/*
	 * Sixteen requests in flight take a server 20 ms away to 800 logs a
	 * second, past what one host's SDK sends, while a server on
	 * HTTP/1.1 sees no more connections from us than from a few
	 * browsers.
	 */
	{ .name = "replay-concurrency", .kind = KIND_COUNT,
	  .value = AT(concurrency), .least = 1, .most = 256,
	  .number = 16, .meta = "N",
	  .help = "requests in flight at most while replaying, adapted to "
	  "the server up to N; 1 sends one at a time, in strict order" },
	{ .name = "refused-timeout", .kind = KIND_DURATION,
	  .value = AT(refused_timeout_ms), .least = 1, .number = 10 * 60 * 1000,
	  .meta = "DURATION",
	  .help = "when the server refuses every delivery alike (a wrong URL "
	  "or key), keep trying this long, then exit 75 with the spool "
	  "kept" },
	{ .name = "cacert", .kind = KIND_FILE, .value = AT(cacert),
	  .env = { "CURL_CA_BUNDLE", "SSL_CERT_FILE" }, .meta = "FILE",
	  .help = "CA certificates to check the server's with" },
	{ .name = "capath", .kind = KIND_DIRECTORY, .value = AT(capath),
	  .env = { "SSL_CERT_DIR" }, .meta = "DIR",
	  .help = "a directory of them, as for curl(1)" },

	{ .name = "status", .kind = KIND_COMMAND, .command = MODE_STATUS,
	  .heading = "Admin commands, for DIR (they never touch a running "
	  "instance's socket):",
	  .help = "is an instance running, what is spooled, is the server "
	  "healthy; exit 0 if running, 3 if not" },
	{ .name = "json", .kind = KIND_FLAG, .value = AT(json),
	  .help = "with --status: one JSON object" },
	{ .name = "dump", .kind = KIND_COMMAND, .command = MODE_DUMP,
	  .help = "print the spool, oldest first, as JSON lines" },
	{ .name = "seq", .kind = KIND_RANGE, .given = AT(seq_given),
	  .meta = "N[-M]",
	  .help = "with --dump: record N only, or N to M" },
	{ .name = "count", .kind = KIND_FLAG, .value = AT(count),
	  .help = "with --dump: print how many records, not them" },
	{ .name = "give-up", .kind = KIND_RANGE, .command = MODE_GIVE_UP,
	  .meta = "N[-M]",
	  .help = "move records N to M to the failure log unsent when "
	  "echopost next delivers; no instance may run" },
	{ .name = "replay-only", .kind = KIND_COMMAND,
	  .command = MODE_REPLAY_ONLY,
	  .help = "deliver the spool without opening the socket, exit when "
	  "it is empty" },
	{ .name = "help", .letter = 'h', .kind = KIND_HELP,
	  .help = "display this help and exit" },
	{ .name = "version", .letter = 'V', .kind = KIND_VERSION,
	  .help = "output version information and exit" },
	{ .name = NULL }
};
