/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/* unit.h: the Check suites of the unit tests, one per module. */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>

Suite	*options_suite(void);
Suite	*record_suite(void);
Suite	*request_suite(void);
Suite	*journal_suite(void);
Suite	*spool_suite(void);
Suite	*forwarder_suite(void);
Suite	*window_suite(void);
Suite	*log_suite(void);

/* A fresh directory under TMPDIR, for tests that write files. */
char	*unit_tempdir(void);
void	 unit_rmtree(const char *);

#endif
