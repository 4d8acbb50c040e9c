/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * preload.h: what the LD_PRELOAD libraries of the tests (killpoint.c,
 * faultpoint.c) share: the real function a wrapper stands in front of,
 * and the mode argument of an open.
 */
#ifndef PRELOAD_H
#define PRELOAD_H

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/types.h>

/* In a wrapper of name: real, the next definition of it, found once. */
#define REAL(name)	static __typeof__(name) *real;			\
	if (real == NULL)						\
		real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* The mode an open passes on: there only with O_CREAT or O_TMPFILE. */
static inline mode_t
mode_of(int flags, va_list ap)
{
	return ((flags & (O_CREAT | O_TMPFILE)) != 0 ? va_arg(ap, mode_t) : 0);
}

#endif
