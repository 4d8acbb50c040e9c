/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * position.h: how far delivery has come, in a file of its own.
 *
 * No spool file is changed in place once synced; the one thing that moves
 * is the head, the oldest record not delivered yet. It is kept here, in
 * two slots written in turn, each with a counter and a CRC-32: a write
 * torn by a crash leaves the other slot, one step behind, which costs
 * duplicates and never a record.
 */
#ifndef POSITION_H
#define POSITION_H

#include <stdint.h>

struct position;

int	 position_open(struct position **, int, const char *, uint64_t *);
int	 position_save(struct position *, uint64_t);
void	 position_close(struct position *);
int	 position_read(int, const char *, uint64_t *);

#endif
