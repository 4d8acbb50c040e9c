/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * sealed_int.h: what sealed.c shares with sealed_import.c, and with no
 * other file: how keys are written, and the GDBM helpers.
 */
#ifndef SEALED_INT_H
#define SEALED_INT_H

#include <stdint.h>

#include <gdbm.h>

#define KEY_SIZE	8		/* a number, as a value or an old key */
#define SEVEN_BIT_KEY_SIZE 10		/* 64 bits, 7 to a byte */
/* Memory must not grow with the file: bucket caches of bounded size. */
#define WRITE_BUCKETS	256

/*
 * Record keys are sequence numbers, 8 bytes. echopost 1 wrote them
 * big-endian, and GDBM's hash, which adds each byte shifted five bits more
 * than the one before, then gives one value to numbers 8191 apart: a
 * fetch reads every record its key collides with, for GDBM compares only
 * a key's first four bytes before it reads. Files sealed now put the low
 * bytes first, and say so under "key_order".
 *
 * That hash also reads each byte as a plain char, signed on amd64 and
 * unsigned on arm64: a key with a byte of 0x80 or more lands in another
 * bucket on the other machine, which then cannot find its records. Files
 * sealed now write 7 bits of the number to a byte, low bits first, so
 * that every byte hashes alike on both.
 */
enum key_order {
	KEYS_BIG_ENDIAN,
	KEYS_LITTLE_ENDIAN,
	KEYS_OF_BLOCKS,		/* little-endian, each a block's first */
	KEYS_OF_BLOCKS_SEVEN_BIT /* as blocks, 7 bits to a byte */
};

datum		 sealed_number_value(uint64_t, unsigned char [KEY_SIZE]);
datum		 sealed_name_key(const char *);
int		 sealed_meta_get(GDBM_FILE, const char *, uint64_t *);
int		 sealed_key_order(GDBM_FILE, enum key_order *);
int		 sealed_gdbm_errno(GDBM_FILE);
GDBM_FILE	 sealed_open_gdbm(int, const char *, const char *, int, int,
		    size_t);

#endif
