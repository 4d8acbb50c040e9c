/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * unit.c: run every unit test suite.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

char *
unit_tempdir(void)
{
	char		*dir;
	const char	*base;

	base = getenv("TMPDIR");
	if (asprintf(&dir, "%s/echopost-unit-XXXXXX",
	    base != NULL ? base : "/tmp") == -1)
		return (NULL);
	if (mkdtemp(dir) == NULL) {
		free(dir);
		return (NULL);
	}
	return (dir);
}

void
unit_rmtree(const char *dir)
{
	char	*command;

	if (asprintf(&command, "rm -rf '%s'", dir) == -1)
		return;
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(command);
}

int
main(void)
{
	SRunner	*runner;
	int	 failed;

	runner = srunner_create(options_suite());
	srunner_add_suite(runner, record_suite());
	srunner_add_suite(runner, request_suite());
	srunner_add_suite(runner, journal_suite());
	srunner_add_suite(runner, spool_suite());
	srunner_add_suite(runner, forwarder_suite());
	srunner_add_suite(runner, window_suite());
	srunner_add_suite(runner, log_suite());
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
