/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * journal_int.h: the journal's format, shared by its writer (journal.c,
 * which describes the layout) and its reader (journal_reader.c), and by
 * no other file.
 */
#ifndef JOURNAL_INT_H
#define JOURNAL_INT_H

#include <stdint.h>

#define MAGIC		"EPJ1"
#define ENTRY_HEAD	16
/* No record is larger: --max-message-size stays below 2 GiB. */
#define ENTRY_MAX	((uint32_t)INT32_MAX)
#define READ_CHUNK	(64 * 1024)
/*
 * A spare is written in chunks of this size: a journal whose size is a
 * multiple of it was made from one, and zeros after its entries are its
 * unused rest. Any other journal ends where its last write did.
 */
#define SPARE_CHUNK	READ_CHUNK

#endif
