/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * emulate.c: a cross-built program, run by path on this machine.
 *
 * When echopost is cross-compiled, make check builds one of these for
 * each program the tests run by path (echopost, echopost-send): it runs
 * PROGRAM under EMULATOR (qemu-user), both fixed at build time, with the
 * arguments it was given. It is built static, and hands LD_PRELOAD to the
 * emulated program (qemu's -E) instead of keeping it: the preloaded
 * libraries of the crash and fault tests are built for the program's
 * machine, and the loader of this one would refuse them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef EMULATOR
#error "build with -DEMULATOR=\"qemu-...\""
#endif
#ifndef PROGRAM
#error "build with -DPROGRAM=\"/path/of/the/program\""
#endif

int
main(int argc, char **argv)
{
	const char	*preload;
	char		**args, *setting;
	size_t		 size;
	int		 n = 0, i;

	if ((args = calloc((size_t)argc + 4, sizeof *args)) == NULL) {
		perror("emulate");
		return (127);
	}
	args[n++] = EMULATOR;
	if ((preload = getenv("LD_PRELOAD")) != NULL) {
		size = sizeof "LD_PRELOAD=" + strlen(preload);
		if ((setting = malloc(size)) == NULL ||
		    unsetenv("LD_PRELOAD") == -1) {
			perror("emulate");
			return (127);
		}
		snprintf(setting, size, "LD_PRELOAD=%s", preload);
		args[n++] = "-E";
		args[n++] = setting;
	}
	args[n++] = PROGRAM;
	for (i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	execvp(args[0], args);
	fprintf(stderr, "emulate: %s: %s\n", args[0], strerror(errno));
	return (127);
}
