/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_int.h: the spool's own structures, shared by its files and by no
 * other module.
 *
 * The spool is a row of segments, oldest first, each a file under DIR:
 * sealed GDBM files (sealed.c), then journals (journal.c), the newest of
 * which takes appends. Records are numbered in arrival order; the head,
 * the oldest not delivered, is saved in the position file (position.c).
 *
 * Who may touch what, in the letters of echopost.h: main's thread (M)
 * appends, commits and rotates; the forwarder's (F) settles, reads ahead,
 * removes and syncs; any thread takes the range, count and size. Locks:
 *	l	lock: the row of segments, the head, reading ahead
 *	a	append_lock: the journal that takes appends, the byte count
 * Lock order: l, then a; never the other way round. spool_open and
 * spool_close run while no forwarder does, and touch any field.
 */
#ifndef SPOOL_INT_H
#define SPOOL_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "echopost.h"

#define JOURNAL_SUFFIX	".journal."
#define SPARE_SUFFIX	".journal.spare"
#define SEALED_SUFFIX	".sealed."
#define POSITION_SUFFIX	".position"
/* Temporary files: a sealed file being built, a copy being imported. */
#define BUILD_SUFFIX	".building"
#define IMPORT_SUFFIX	".importing"
#define SPARE		0	/* the journal "number" of the spare */
#define GROWING		UINT64_MAX	/* the end of the newest journal */
#define JOURNAL_SIZE	(4 * 1024 * 1024)
/*
 * A read that fails (EIO, EMFILE, ENOMEM...) is not damage: it is tried
 * again, at start after START_RETRY_MS, doubled each time, and later
 * after the forwarder's backoff. Only when it failed READ_TRIES times in
 * a row is the block or the file taken for unreadable.
 */
#define READ_TRIES	5
#define START_TRIES	3
#define START_RETRY_MS	25

enum segment_kind {
	SEGMENT_SEALED,
	SEGMENT_JOURNAL,
	SEGMENT_LEGACY		/* an echopost 1 file, for a reader only */
};

struct segment {
	enum segment_kind kind;
	uint64_t	 number;	/* of a journal */
	uint64_t	 first;		/* its first record */
	uint64_t	 end;		/* after its last, or GROWING */
	uint64_t	 named_end;	/* end as a sealed file's name has it */
	bool		 damaged;	/* a record in it could not be read */
};

/* Records first to last an administrator gave up on (spool_given_up.c). */
struct given_up {
	uint64_t	 first;
	uint64_t	 last;
};

struct spool {
	pthread_mutex_t	 lock;		/* l */
	int		 dirfd;		/* [I] DIR: every file is named in it */
	char		*dir;		/* [I] DIR, as shown */
	char		*name;		/* [I] echopost.spool */
	char		*path;		/* [I] DIR/echopost.spool, as shown */
	bool		 reader;	/* [I] read only, beside an owner */
	struct given_up	*given_up;	/* [I] sorted, apart */
	size_t		 given_up_count; /* [I] */
	size_t		 given_up_lines; /* [I] in the file */
	uint64_t	 max_bytes;	/* [I] 0: no limit but the disk's */
	off_t		 journal_size;	/* [I] one is closed past that */

	struct segment	*segments;	/* [lF] by first, oldest first */
	size_t		 count;		/* [lF] */
	size_t		 allocated;	/* [lF] */
	uint64_t	 head;		/* [lF] oldest record not delivered */
	uint64_t	 saved_head;	/* [lF] as the position file has it */
	uint64_t	 read;		/* [lF] the next one to hand out */
	uint64_t	 handed;	/* [lF] after the last one handed out */
	bool		 head_exact;	/* [lF] saved: a gap at it is a loss */
	uint64_t	 numbers_from;	/* [I] no record had one below, kept */
	bool		 kept_at_open;	/* [I] a journal unreadable at open */
	uint64_t	 damaged_until;	/* [lF] what lies below was lost */
	uint64_t	 lost_first;	/* [lF] records known lost: from */
	uint64_t	 lost_end;	/* [lF] to before this */
	uint64_t	 missing;	/* [lF] records reported missing */
	uint64_t	 maybe_missing;	/* [lF] numbers maybe never given */
	uint64_t	 bound_first;	/* [I] never given maybe: from */
	uint64_t	 bound_end;	/* [I] to before this */
	uint64_t	 failed_seq;	/* [lF] whose read failed */
	unsigned int	 failures;	/* [lF] in a row, for failed_seq */
	struct position	*position;	/* [lF] */
	unsigned int	 removals;	/* [lF] since the last save */
	int64_t		 removed_ms;	/* [lF] when the first of them was */
	bool		 legacy_due;	/* [lF] an echopost 1 file to import */
	int64_t		 retry_ms;	/* [lF] import or move failed then */
	uint64_t	 tracked;	/* [lF] newest journal in segments */
	struct journal_reader *cursor;	/* [lF] reads the head's journal */
	uint64_t	 cursor_number;	/* [lF] */
	struct sealed	*sealed;	/* [lF] the open sealed file */
	size_t		 sealed_index;	/* [lF] its segment */
	char		 error[CAUSE_SIZE]; /* [lF] */

	pthread_mutex_t	 append_lock;	/* a */
	struct journal	*journal;	/* [aM] takes the appends */
	uint64_t	 journal_number; /* [aM] */
	off_t		 committed;	/* [aM] the end of its last commit */
	int64_t		 committed_ms;	/* [aM] when, or never: INT64_MIN */
	bool		 preallocated;	/* [aM] it was made from a spare */
	int64_t		 rotate_failed_ms; /* [M] */
	bool		 commit_failed;	/* [aM] rotate before the next one */
	bool		 spare_ready;	/* [a] a spare waits for rotation */
	int64_t		 spare_tried_ms; /* [F] */
	uint64_t	 opened_journal; /* [I] the newest journal at open */
	uint64_t	 next;		/* [aM] key of the next append */
	uint64_t	 bytes;		/* [a] in records not delivered */
	uint64_t	 pending_bytes;	/* [aM] appended, not committed yet */
	int64_t		 disk_checked_ms; /* [M] */
	bool		 disk_low;	/* [M] */
	char		 append_error[CAUSE_SIZE]; /* [M] */
};

/* spool_names.c: the spool's files under DIR, by name. */
#define NAME_SIZE	(NAME_MAX + 1)
int	 spool_names_file(const struct spool *, char [NAME_SIZE], const char *,
	    ...) __attribute__((__format__(__printf__, 3, 4)));
const char *spool_names_path(const struct spool *, const char *,
	    char [PATH_MAX]);
int	 spool_names_journal(const struct spool *, uint64_t, char [NAME_SIZE]);
int	 spool_names_sealed(const struct spool *, uint64_t, uint64_t,
	    char [NAME_SIZE]);
bool	 spool_names_numbered(const char *, const char *, const char *,
	    uint64_t *, char **);
void	 spool_names_remove(const struct spool *, const char *);
void	 spool_names_set_aside(const struct spool *, const char *,
	    const char *, const char *);

/* spool_files.c: what a crash or an older echopost left under DIR. */
int	 spool_files_scan(struct spool *, bool *);

/* spool_segments.c: the row of segments, the head. */
int	 spool_segments_add(struct spool *, enum segment_kind, uint64_t,
	    uint64_t, uint64_t);
void	 spool_segments_drop(struct spool *, size_t);
void	 spool_segments_sort(struct spool *);
void	 spool_segments_close_cursors(struct spool *);
int	 spool_segments_name(const struct spool *, const struct segment *,
	    char [NAME_SIZE]);
void	 spool_segments_track(struct spool *);
void	 spool_segments_remove_file(struct spool *, const struct segment *);
int	 spool_segments_read_next(struct spool *, uint64_t *, void **,
	    size_t *);
int	 spool_segments_read(struct spool *, uint64_t, void **, size_t *);
int	 spool_segments_save_position(struct spool *);

/* spool_seal.c: closed journals sealed into GDBM. */
int	 spool_seal_journals(struct spool *);

/* spool_legacy.c: a spool of echopost 1. */
int	 spool_legacy_take_up(struct spool *);
int	 spool_legacy_import(struct spool *);

/* spool_given_up.c: records to move to the failure log, not to send. */
void	 spool_given_up_load(struct spool *);
int	 spool_given_up_remove(struct spool *);

/* spool_append.c: the journal that takes appends. */
int	 spool_append_begin_journal(struct spool *, uint64_t);
void	 spool_append_prepare_spare(struct spool *);

#endif
