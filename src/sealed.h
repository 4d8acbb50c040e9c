/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * sealed.h: spool files that are written once and then only read.
 *
 * Files are named within a directory given by its descriptor; GDBM is also
 * told each one's path, for its messages and for a recovery.
 *
 * A sealed file is a GDBM file of records in blocks of consecutive ones,
 * each keyed by its first record's 64-bit sequence number (10 bytes of
 * 7 bits, low bits first, so that the file reads the same on amd64 and
 * arm64), and says so under "key_order" (3) and "block_records". Earlier
 * builds keyed blocks by 8 bytes, little-endian, under "key_order" 2:
 * such a file reads only on the architecture that wrote it. Any other has a
 * record a value: one imported from echopost 1 (keyed big-endian, without
 * "key_order") or sealed by a build from before blocks. Records go in in
 * ascending order and come out as malloc'd copies.
 *
 * A sealed file is built under a temporary name, synced, and only then
 * given its name. It is never opened for writing again, so no crash can
 * damage what it holds: GDBM rewrites buckets in place and a kill in the
 * middle of a write can lose records it had synced, which is why the
 * spool keeps no only copy in a file GDBM is still changing. A sealed
 * file goes whole, once every record in it is delivered.
 *
 * A spool file of echopost 1 (echopost.spool, changed in place) is made
 * into a sealed file by sealed_import: its records are copied, recovered
 * if need be, and sealed, while the old file stays untouched until then.
 */
#ifndef SEALED_H
#define SEALED_H

#include <stddef.h>
#include <stdint.h>

struct sealed;
struct sealed_writer;

/*
 * What an imported spool holds, and where its own head was. end is also
 * given: the first record numbered after the spool's; keys from there on
 * are damaged ones, ignored.
 */
struct sealed_range {
	uint64_t	 first;
	uint64_t	 end;
	uint64_t	 head;
	uint64_t	 ignored;
};

int	 sealed_create(struct sealed_writer **, int, const char *,
	    const char *);
int	 sealed_put(struct sealed_writer *, uint64_t, const void *, size_t);
int	 sealed_finish(struct sealed_writer *, uint64_t, const char *);
void	 sealed_abandon(struct sealed_writer *);

int	 sealed_open(struct sealed **, int, const char *, const char *);
int	 sealed_get(struct sealed *, uint64_t, void **, size_t *);
int	 sealed_meta(struct sealed *, const char *, uint64_t *);
void	 sealed_close(struct sealed *);

int	 sealed_import(int, const char *, const char *, struct sealed_range *);

#endif
