/*
 * spool.c: the GDBM spool and its journals.
 *
 * Appends go to a journal file (journal.c): one write and one fdatasync per
 * group of calls acknowledge them. The forwarder's thread moves committed
 * entries into GDBM, syncs GDBM, and only then deletes a journal it has
 * moved whole. So GDBM work never sits between a call and its answer, and
 * after a crash every acknowledged record is in GDBM or in a journal.
 *
 * Journals are numbered: PATH.journal.N. The newest takes appends and a new
 * one is begun when it grows past JOURNAL_ROTATE; there is always one while
 * GDBM may be out of date, and its header and entries give the next
 * sequence number without asking GDBM.
 *
 * Besides the records (8-byte big-endian keys) the GDBM file holds
 * bookkeeping keys of other lengths: "head", "next" (the end of what was
 * moved) and "bytes", written at every sync, and "clean", present only
 * after a clean close. GDBM is not crash-atomic: a file closed uncleanly
 * can lose synced keys without an error, so it is recovered before it is
 * trusted. That recovery takes seconds for a large file, so it runs on the
 * forwarder's thread while the listener already takes logs into a journal.
 *
 * A write that fails (ENOSPC, EIO) leaves GDBM refusing every operation
 * until the file is recovered, reads included. So appends stop short of a
 * full disk, and a file that needs recovery gets it at its next use.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/endian.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <gdbm.h>
#include <jansson.h>

#include "journal.h"
#include "log.h"
#include "spool.h"

#define KEY_SIZE	8
/* Appends stop while the file system has less than this free. */
#define DISK_MARGIN	(8 * 1024 * 1024)
#define DISK_CHECK_MS	100
#define RECOVER_EVERY_MS 1000
#define OPEN_FLAGS	(GDBM_WRCREAT | GDBM_NOMMAP | GDBM_CLOEXEC)
#define CACHE_BUCKETS	64
#define JOURNAL_SUFFIX	".journal."
#define SPARE_SUFFIX	".journal.spare"
#define SPARE		0	/* the journal "number" of the spare */
/* A journal this long is closed and the next one begun. */
#define JOURNAL_ROTATE	(4 * 1024 * 1024)
/* A spare holds that and room for the group that crosses the line. */
#define SPARE_SIZE	(JOURNAL_ROTATE + 256 * 1024)
#define SPARE_RETRY_MS	1000
/* Spares are made only once a journal holds this much: under load. */
#define SPARE_AFTER	(256 * 1024)
/* Entries moved to GDBM at one go, so that the forwarder stays responsive. */
#define MOVE_BATCH	4096
/*
 * Removals are synced after this many, or this long after the first one
 * not synced: a crash repeats at most that many deliveries.
 */
#define REMOVALS_PER_SYNC 1024
#define SYNC_AFTER_MS	100

struct spool {
	/* The GDBM side: the forwarder's thread, and open and close. */
	pthread_mutex_t	 lock;
	GDBM_FILE	 db;
	char		*path;
	uint64_t	 head;		/* oldest record, if head < moved */
	uint64_t	 moved;		/* the records below it went to GDBM */
	uint64_t	 gdbm_bytes;	/* "bytes" as read from GDBM at open */
	bool		 recovery_due;	/* closed uncleanly, not recovered */
	bool		 marked_open;	/* the clean mark is gone, on disk */
	unsigned int	 removals;	/* since the last sync */
	int64_t		 removed_ms;	/* when the first of them was made */
	struct journal_reader *mover;	/* the journal being moved to GDBM */
	uint64_t	 mover_number;	/* its number, or the next one's */
	uint64_t	 first_journal;	/* the oldest journal at open */
	bool		 reader;	/* opened by spool_open_reader */
	bool		 open;		/* opened in full: may be removed */
	bool		 rebuilt;	/* recovered once for a lost record */
	bool		 fresh;		/* the file was new or set aside */
	int64_t		 recovered_ms;	/* last gdbm_recover */
	char		 error[PATH_MAX + 256];

	/* The append side: the listener's thread. */
	pthread_mutex_t	 append_lock;
	struct journal	*journal;	/* takes the appends */
	uint64_t	 journal_number;
	off_t		 committed;	/* the end of its last commit */
	bool		 preallocated;	/* it was made from a spare */
	int64_t		 rotate_failed_ms;
	bool		 spare_ready;	/* a spare waits for the next one */
	int64_t		 spare_tried_ms;
	uint64_t	 next;		/* key of the next append */
	uint64_t	 bytes;		/* in records, about, after a crash */
	uint64_t	 pending_bytes;	/* appended, not committed yet */
	uint64_t	 max_bytes;	/* 0: no limit but the disk's */
	int64_t		 disk_checked_ms;
	bool		 disk_low;
	char		 append_error[PATH_MAX + 256];
};

static datum
sequence_key(uint64_t seq, unsigned char buf[KEY_SIZE])
{
	datum	key;

	be64enc(buf, seq);
	key.dptr = (char *)buf;
	key.dsize = KEY_SIZE;
	return (key);
}

static uint64_t
key_sequence(datum key)
{
	return (be64dec(key.dptr));
}

static datum
name_key(const char *name)
{
	datum	key;

	key.dptr = (char *)name;
	key.dsize = (int)strlen(name);
	return (key);
}

static int
fail(struct spool *s, const char *what)
{
	snprintf(s->error, sizeof s->error, "%s: %s", what,
	    gdbm_db_strerror(s->db));
	return (-1);
}

static int
meta_get(struct spool *s, const char *name, uint64_t *value)
{
	datum	data;

	data = gdbm_fetch(s->db, name_key(name));
	if (data.dptr == NULL)
		return (gdbm_errno == GDBM_ITEM_NOT_FOUND ? 0 : -1);
	if (data.dsize == KEY_SIZE)
		*value = key_sequence(data);
	free(data.dptr);
	return (data.dsize == KEY_SIZE ? 1 : 0);
}

static int
meta_put(struct spool *s, const char *name, uint64_t value)
{
	unsigned char	buf[KEY_SIZE];

	return (gdbm_store(s->db, name_key(name), sequence_key(value, buf),
	    GDBM_REPLACE));
}

/* 1 if record seq is there, 0 if not, -1 if GDBM cannot tell. */
static int
record_exists(struct spool *s, uint64_t seq)
{
	unsigned char	buf[KEY_SIZE];

	if (gdbm_exists(s->db, sequence_key(seq, buf)))
		return (1);
	if (gdbm_errno == GDBM_NO_ERROR || gdbm_errno == GDBM_ITEM_NOT_FOUND)
		return (0);
	return (fail(s, "look up"));
}

/* The bookkeeping keys were lost: find both ends from the records. */
static int
scan_ends(struct spool *s)
{
	datum		key, next, value;
	uint64_t	seq, low = UINT64_MAX, high = 0;

	s->gdbm_bytes = 0;
	key = gdbm_firstkey(s->db);
	while (key.dptr != NULL) {
		if (key.dsize == KEY_SIZE) {
			seq = key_sequence(key);
			if (seq < low)
				low = seq;
			if (seq >= high)
				high = seq + 1;
			value = gdbm_fetch(s->db, key);
			s->gdbm_bytes += value.dptr != NULL ? value.dsize : 0;
			free(value.dptr);
		}
		next = gdbm_nextkey(s->db, key);
		free(key.dptr);
		key = next;
	}
	if (gdbm_errno != GDBM_ITEM_NOT_FOUND)
		return (fail(s, "scan"));
	s->head = low == UINT64_MAX ? 0 : low;
	s->moved = high;
	return (0);
}

/* Is name the spool's name plus ".XXXXXX", as gdbm_recover's new file? */
static bool
recovery_leftover(const char *name, const char *base)
{
	size_t	len = strlen(base), i;

	if (strncmp(name, base, len) != 0 || name[len] != '.' ||
	    strlen(name + len + 1) != 6)
		return (false);
	for (i = len + 1; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]))
			return (false);
	return (true);
}

/* The directory the spool is in, and the spool's name in it. */
static DIR *
open_parent(const struct spool *s, char parent[PATH_MAX], const char **base)
{
	char	*slash;

	strlcpy(parent, s->path, PATH_MAX);
	if ((slash = strrchr(parent, '/')) == NULL) {
		*base = s->path;
		strlcpy(parent, ".", PATH_MAX);
	} else {
		*slash = '\0';
		*base = s->path + (slash - parent) + 1;
	}
	return (opendir(parent));
}

/*
 * gdbm_recover builds the new file beside the old one and renames it into
 * place; a run killed in between leaves it behind, the old file whole.
 */
static void
remove_recovery_leftovers(struct spool *s)
{
	struct dirent	*entry;
	DIR		*dir;
	const char	*base;
	char		 parent[PATH_MAX], leftover[PATH_MAX];

	if ((dir = open_parent(s, parent, &base)) == NULL)
		return;
	while ((entry = readdir(dir)) != NULL) {
		if (!recovery_leftover(entry->d_name, base))
			continue;
		if (snprintf(leftover, sizeof leftover, "%s/%s", parent,
		    entry->d_name) < (int)sizeof leftover &&
		    unlink(leftover) == 0)
			log_event(LEVEL_INFO, "spool_leftover_removed",
			    "{s:s}", "path", leftover);
	}
	closedir(dir);
}

/* The spool's name and a suffix: a journal's number, or "spare". */
static int
journal_path(const struct spool *s, uint64_t number, char path[PATH_MAX])
{
	int	n;

	if (number == 0)
		n = snprintf(path, PATH_MAX, "%s" SPARE_SUFFIX, s->path);
	else
		n = snprintf(path, PATH_MAX, "%s" JOURNAL_SUFFIX "%llu",
		    s->path, (unsigned long long)number);
	if (n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

/* Delete journal number (or the spare); one already gone is fine. */
static void
remove_journal(const struct spool *s, uint64_t number)
{
	char	path[PATH_MAX];

	if (journal_path(s, number, path) == 0 && unlink(path) == -1 &&
	    errno != ENOENT)
		log_event(LEVEL_WARN, "journal_error", "{s:s, s:s}", "path",
		    path, "error", strerror(errno));
}

/* Is name the spool's name, JOURNAL_SUFFIX and a number? */
static bool
journal_number(const char *name, const char *base, uint64_t *number)
{
	size_t	len = strlen(base), suffix = strlen(JOURNAL_SUFFIX);
	char	*end;

	if (strncmp(name, base, len) != 0 ||
	    strncmp(name + len, JOURNAL_SUFFIX, suffix) != 0 ||
	    !isdigit((unsigned char)name[len + suffix]))
		return (false);
	errno = 0;
	*number = strtoull(name + len + suffix, &end, 10);
	return (*end == '\0' && errno == 0 && *number > 0);
}

/* The numbers of the journals beside the spool, *low to *high; 0 if none. */
static int
find_journals(struct spool *s, uint64_t *low, uint64_t *high)
{
	struct dirent	*entry;
	DIR		*dir;
	const char	*base;
	char		 parent[PATH_MAX];
	uint64_t	 number;

	*low = *high = 0;
	if ((dir = open_parent(s, parent, &base)) == NULL) {
		snprintf(s->error, sizeof s->error, "%s: %s", parent,
		    strerror(errno));
		return (-1);
	}
	while ((entry = readdir(dir)) != NULL) {
		if (!journal_number(entry->d_name, base, &number))
			continue;
		if (*low == 0 || number < *low)
			*low = number;
		if (number > *high)
			*high = number;
	}
	closedir(dir);
	return (0);
}

/*
 * Rebuild the file in place. A routine unclean stop needs no copy; damage
 * that GDBM itself reported keeps one beside the spool for a person.
 */
static int
recover(struct spool *s, const char *reason, bool keep_copy)
{
	gdbm_recovery	rcvr;
	int		flags = GDBM_RCVR_FORCE;

	memset(&rcvr, 0, sizeof rcvr);
	if (keep_copy)
		flags |= GDBM_RCVR_BACKUP;
	s->recovered_ms = clock_monotonic_ms();
	if (gdbm_recover(s->db, &rcvr, flags) != 0) {
		snprintf(s->error, sizeof s->error, "recover %s: %s: %s",
		    s->path, gdbm_strerror(gdbm_errno), strerror(errno));
		free(rcvr.backup_name);
		remove_recovery_leftovers(s);
		return (-1);
	}
	log_event(LEVEL_WARN, "spool_recovered",
	    "{s:s, s:s, s:I, s:I, s:I, s:s?}", "path", s->path,
	    "reason", reason,
	    "recovered_keys", (json_int_t)rcvr.recovered_keys,
	    "failed_keys", (json_int_t)rcvr.failed_keys,
	    "failed_buckets", (json_int_t)rcvr.failed_buckets,
	    "copy", rcvr.backup_name);
	free(rcvr.backup_name);
	return (0);
}

/*
 * A record between head and next is not there: GDBM lost it. One rebuild,
 * with a copy of the file kept, may bring it back (returns 1: look again);
 * what is still missing is reported, never skipped in silence.
 */
static int
missing(struct spool *s, uint64_t seq)
{
	if (!s->rebuilt) {
		s->rebuilt = true;
		if (recover(s, "a record is missing", true) == 0)
			return (1);
	}
	log_event(LEVEL_ERROR, "record_missing", "{s:s, s:I}", "path", s->path,
	    "seq", (json_int_t)seq);
	return (0);
}

/*
 * "head" and "next" may be behind: appends and removals after the last sync
 * are not in them. Walk both forward over what is really there. After a
 * clean close "head" is exact, so a gap at it is a loss, not a removal.
 */
static int
find_ends(struct spool *s, bool closed_cleanly)
{
	int	have_head, have_next, found;

	have_head = meta_get(s, "head", &s->head);
	have_next = meta_get(s, "next", &s->moved);
	if (have_head == -1 || have_next == -1 ||
	    meta_get(s, "bytes", &s->gdbm_bytes) == -1)
		return (fail(s, "read bookkeeping"));
	if (!have_head || !have_next || s->head > s->moved)
		return (scan_ends(s));
	while ((found = record_exists(s, s->moved)) == 1)
		s->moved++;
	while (found != -1 && s->head < s->moved &&
	    (found = record_exists(s, s->head)) == 0) {
		if (closed_cleanly && missing(s, s->head) == 1)
			continue;
		s->head++;
	}
	return (found == -1 ? -1 : 0);
}

/* Errors of gdbm_open that say the file is damaged, not the system. */
static bool
damaged(int error)
{
	switch (error) {
	case GDBM_BLOCK_SIZE_ERROR:
	case GDBM_BAD_MAGIC_NUMBER:
	case GDBM_MALFORMED_DATA:
	case GDBM_BYTE_SWAPPED:
	case GDBM_BAD_FILE_OFFSET:
	case GDBM_FILE_EOF:
	case GDBM_NEED_RECOVERY:
	case GDBM_DIR_OVERFLOW:
	case GDBM_BAD_BUCKET:
	case GDBM_BAD_HEADER:
	case GDBM_BAD_AVAIL:
	case GDBM_BAD_HASH_TABLE:
	case GDBM_BAD_DIR_ENTRY:
	case GDBM_BAD_HASH_ENTRY:
		return (true);
	}
	return (false);
}

/* Rename path to path.damaged-TIME, kept, for a person to look at. */
static int
rename_damaged(const char *path, char kept[PATH_MAX])
{
	char	when[TIME_BUFSIZE];

	format_time(clock_realtime_us(), when);
	if (snprintf(kept, PATH_MAX, "%s.damaged-%s", path, when) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (rename(path, kept));
}

/*
 * A spool GDBM cannot open or rebuild is renamed aside, never deleted, and
 * a fresh one takes its place so that logs can be stored again.
 */
static int
set_aside(struct spool *s, const char *why)
{
	char	kept[PATH_MAX];

	if (s->db != NULL)
		gdbm_close(s->db);
	s->db = NULL;
	if (rename_damaged(s->path, kept) == -1) {
		snprintf(s->error, sizeof s->error, "set aside %s: %s",
		    s->path, strerror(errno));
		return (-1);
	}
	log_event(LEVEL_ERROR, "spool_damaged", "{s:s, s:s, s:s}", "path",
	    s->path, "kept_as", kept, "error", why);
	return (0);
}

/*
 * Memory must not grow with the spool: no mmap of the whole file, and a
 * bucket cache of fixed size.
 */
static int
limit_memory(struct spool *s)
{
	size_t	buckets = CACHE_BUCKETS;

	if (gdbm_setopt(s->db, GDBM_SETCACHESIZE, &buckets,
	    sizeof buckets) != 0)
		return (fail(s, "set cache size"));
	return (0);
}

/* Open the file; fresh tells whether it holds anything from before. */
static int
open_file(struct spool *s)
{
	struct stat	sb;
	char		why[128];

	s->fresh = stat(s->path, &sb) == -1 || sb.st_size == 0;
	s->db = gdbm_open(s->path, 0, OPEN_FLAGS, 0600, NULL);
	if (s->db != NULL)
		return (limit_memory(s));
	if (damaged(gdbm_errno)) {
		strlcpy(why, gdbm_strerror(gdbm_errno), sizeof why);
		if (set_aside(s, why) == -1)
			return (-1);
		s->fresh = true;
		s->db = gdbm_open(s->path, 0, OPEN_FLAGS, 0600, NULL);
		if (s->db != NULL)
			return (limit_memory(s));
	}
	snprintf(s->error, sizeof s->error, "open %s: %s", s->path,
	    gdbm_strerror(gdbm_errno));
	return (-1);
}

/*
 * A damaged journal is renamed aside for a person, like a damaged spool;
 * the records after the damage are reported missing when their turn comes.
 */
static void
set_journal_aside(struct spool *s, const char *path, off_t offset)
{
	char	kept[PATH_MAX];

	if (rename_damaged(path, kept) == -1)
		strlcpy(kept, path, sizeof kept);
	log_event(LEVEL_ERROR, "journal_damaged", "{s:s, s:I, s:s}", "path",
	    path, "offset", (json_int_t)offset, "kept_as", kept);
}

static int
begin_journal(struct spool *s, uint64_t number, uint64_t first)
{
	char	path[PATH_MAX];

	if (journal_path(s, number, path) == -1 ||
	    journal_create(&s->journal, path, first) == -1) {
		snprintf(s->error, sizeof s->error, "begin journal %s: %s",
		    path, strerror(errno));
		return (-1);
	}
	s->journal_number = number;
	return (0);
}

/*
 * Take up the newest journal. One without a whole header was being begun
 * when a run died, and never took an entry: it goes.
 */
static int
resume_journal(struct spool *s, uint64_t low, uint64_t high)
{
	char	path[PATH_MAX];

	for (; high >= low && high > 0; high--) {
		if (journal_path(s, high, path) == -1)
			break;
		if (journal_resume(&s->journal, path) == 0) {
			s->journal_number = high;
			return (1);
		}
		if (errno != EBADMSG)
			break;
		log_event(LEVEL_WARN, "journal_removed", "{s:s, s:s}", "path",
		    path, "reason", "no header: it was being begun");
		if (unlink(path) == -1)
			break;
	}
	if (high == 0 || high < low)
		return (0);
	snprintf(s->error, sizeof s->error, "journal %s: %s", path,
	    strerror(errno));
	return (-1);
}

/* Bytes in journal entries, about: what GDBM's count may lack. */
static uint64_t
journal_bytes(struct spool *s, uint64_t low, uint64_t high)
{
	struct stat	sb;
	char		path[PATH_MAX];
	uint64_t	total = 0;

	for (; low > 0 && low <= high; low++)
		if (journal_path(s, low, path) == 0 && stat(path, &sb) == 0 &&
		    sb.st_size > JOURNAL_HEADER_SIZE)
			total += (uint64_t)sb.st_size - JOURNAL_HEADER_SIZE;
	return (total);
}

/* A new GDBM file: the records begin where the oldest journal begins. */
static void
start_at_journals(struct spool *s)
{
	struct journal_reader	*r;
	char			 path[PATH_MAX];
	uint64_t		 number;

	for (number = s->first_journal; number > 0 &&
	    number <= s->journal_number; number++)
		if (journal_path(s, number, path) == 0 &&
		    journal_reader_open(&r, path) == 0) {
			s->head = s->moved = journal_reader_first(r);
			journal_reader_close(r);
			return;
		}
}

/* Recover a file closed uncleanly; if that fails, set it aside. */
static int
recover_unclean(struct spool *s, bool readable)
{
	if (recover(s, readable ? "not closed cleanly" :
	    gdbm_db_strerror(s->db), !readable) == 0)
		return (0);
	if (set_aside(s, s->error) == -1 || open_file(s) == -1)
		return (-1);
	return (0);
}

/* Both ends from GDBM; one rebuild, keeping a copy, if GDBM cannot say. */
static int
read_ends(struct spool *s, bool closed_cleanly)
{
	char	why[sizeof s->error];

	if (s->fresh) {
		start_at_journals(s);
		return (0);
	}
	if (find_ends(s, closed_cleanly) == 0)
		return (0);
	strlcpy(why, s->error, sizeof why);
	if (recover(s, why, true) == -1 || find_ends(s, false) == -1)
		return (-1);
	return (0);
}

/*
 * Open GDBM and take up the newest journal. A GDBM file closed uncleanly
 * is recovered later, on the forwarder's thread, when a journal says where
 * the next record goes; only without one is it recovered here.
 */
static int
open_database(struct spool *s)
{
	uint64_t	clean = 0, low, high;
	bool		readable, closed_cleanly;
	int		have_journal;

	remove_recovery_leftovers(s);
	if (open_file(s) == -1 || find_journals(s, &low, &high) == -1 ||
	    (have_journal = resume_journal(s, low, high)) == -1)
		return (-1);
	s->first_journal = have_journal ? low : 0;
	readable = meta_get(s, "clean", &clean) != -1;
	closed_cleanly = readable && clean == 1;
	if (!s->fresh && !closed_cleanly) {
		/* Damage GDBM reports right away is rare: repaired here. */
		if (have_journal && readable) {
			s->recovery_due = true;
			/* Best guesses until the recovery: for counts only. */
			(void)meta_get(s, "head", &s->head);
			(void)meta_get(s, "bytes", &s->gdbm_bytes);
		} else if (recover_unclean(s, readable) == -1)
			return (-1);
	}
	if (!s->recovery_due && read_ends(s, closed_cleanly) == -1)
		return (-1);
	if (!have_journal || journal_next(s->journal) < s->moved) {
		journal_close(s->journal);
		s->journal = NULL;
		if (begin_journal(s, high + 1, s->moved) == -1)
			return (-1);
		if (s->first_journal == 0)
			s->first_journal = high + 1;
	}
	s->mover_number = s->first_journal;
	s->next = journal_next(s->journal);
	s->committed = journal_committed(s->journal);
	if (s->head > s->next)
		s->head = s->next;
	/*
	 * "bytes" counts all that was appended and not removed, as of the
	 * last sync; after a crash, what the journals got since may be more.
	 */
	s->bytes = s->gdbm_bytes + (closed_cleanly ? 0 :
	    journal_bytes(s, low, high));
	s->marked_open = !closed_cleanly;
	s->open = true;
	return (0);
}

/*
 * A look at the spool while its owner may be writing to it: no lock, no
 * recovery, no writes. What GDBM had at its last sync, then the journals.
 */
static int
open_reader(struct spool *s)
{
	struct journal_reader	*r;
	uint64_t		 low, high, seq;
	const void		*data;
	size_t			 size;
	char			 path[PATH_MAX];

	s->db = gdbm_open(s->path, 0, GDBM_READER | GDBM_NOLOCK | GDBM_NOMMAP |
	    GDBM_CLOEXEC, 0, NULL);
	if (s->db == NULL) {
		snprintf(s->error, sizeof s->error, "open %s: %s", s->path,
		    gdbm_strerror(gdbm_errno));
		return (-1);
	}
	if (find_ends(s, false) == -1 || find_journals(s, &low, &high) == -1)
		return (-1);
	s->next = s->moved;
	s->first_journal = s->mover_number = low;
	s->journal_number = high;
	for (; high >= low && high > 0; high--) {
		if (journal_path(s, high, path) == -1 ||
		    journal_reader_open(&r, path) == -1)
			continue;
		while (journal_read(r, -1, &seq, &data, &size) == 1)
			;
		if (journal_reader_next(r) > s->next)
			s->next = journal_reader_next(r);
		journal_reader_close(r);
		break;
	}
	return (0);
}

static struct spool *
new_spool(const char *path)
{
	struct spool	*s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return (NULL);
	if ((s->path = strdup(path)) == NULL) {
		free(s);
		return (NULL);
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->append_lock, NULL);
	s->recovered_ms = -RECOVER_EVERY_MS;
	s->spare_tried_ms = s->rotate_failed_ms = -SPARE_RETRY_MS;
	return (s);
}

/*
 * Open or create the spool at path. On failure *sp holds a spool whose
 * spool_error() says why, or NULL when out of memory; spool_close() frees
 * it.
 */
int
spool_open(struct spool **sp, const char *path, uint64_t max_bytes)
{
	if ((*sp = new_spool(path)) == NULL)
		return (-1);
	(*sp)->max_bytes = max_bytes;
	return (open_database(*sp));
}

/* Open the spool for reading only, beside a running owner. */
int
spool_open_reader(struct spool **sp, const char *path)
{
	if ((*sp = new_spool(path)) == NULL)
		return (-1);
	(*sp)->reader = true;
	return (open_reader(*sp));
}

/*
 * A file that a failed write left needing recovery gets it now; on a full
 * disk that fails too, so it is tried at most once a second.
 */
static int
usable(struct spool *s)
{
	if (s->recovery_due) {
		if (recover_unclean(s, true) == -1 || read_ends(s, false) == -1)
			return (-1);
		s->recovery_due = false;
		return (0);
	}
	if (!gdbm_needs_recovery(s->db))
		return (0);
	if (clock_monotonic_ms() - s->recovered_ms < RECOVER_EVERY_MS)
		return (-1);	/* s->error still says why */
	return (recover(s, gdbm_db_strerror(s->db), true));
}

/* Is there room for size more bytes, under the cap and on the disk? */
static int
room_for(struct spool *s, size_t size)
{
	struct statvfs	fs;
	uint64_t	bytes = s->bytes + s->pending_bytes;
	int64_t		now;

	if (s->max_bytes > 0 && bytes + size > s->max_bytes) {
		snprintf(s->append_error, sizeof s->append_error, "spool "
		    "full: %llu bytes stored, the limit is %llu "
		    "(--max-spool-size)", (unsigned long long)bytes,
		    (unsigned long long)s->max_bytes);
		return (-1);
	}
	now = clock_monotonic_ms();
	if (s->disk_low || now - s->disk_checked_ms >= DISK_CHECK_MS) {
		s->disk_checked_ms = now;
		if (statvfs(s->path, &fs) == 0)
			s->disk_low = (uint64_t)fs.f_bavail * fs.f_frsize <
			    DISK_MARGIN + size;
	}
	if (s->disk_low) {
		snprintf(s->append_error, sizeof s->append_error, "disk full: "
		    "less than %d MiB free for %s", DISK_MARGIN >> 20, s->path);
		return (-1);
	}
	return (0);
}

/*
 * Add a record to the next commit; *seq is its key. It is not stored
 * until spool_commit() returns 0. The listener's thread only.
 */
int
spool_append(struct spool *s, const void *value, size_t size, uint64_t *seq)
{
	int	status = -1;

	pthread_mutex_lock(&s->append_lock);
	if (room_for(s, size) == 0) {
		if (journal_add(s->journal, value, size, seq) == -1)
			snprintf(s->append_error, sizeof s->append_error,
			    "journal: %s", strerror(errno));
		else {
			s->next = *seq + 1;
			s->pending_bytes += size;
			status = 0;
		}
	}
	pthread_mutex_unlock(&s->append_lock);
	return (status);
}

/*
 * The next commits go to a new journal: made from the spare if there is
 * one, else begun from nothing.
 */
static void
rotate(struct spool *s)
{
	struct journal	*fresh = NULL, *old;
	char		 path[PATH_MAX], spare[PATH_MAX];
	bool		 use_spare;
	int		 status = -1;
	int64_t		 now = clock_monotonic_ms();

	if (now - s->rotate_failed_ms < SPARE_RETRY_MS)
		return;
	/* spare_ready stays set meanwhile, so no new spare is begun. */
	pthread_mutex_lock(&s->append_lock);
	use_spare = s->spare_ready;
	pthread_mutex_unlock(&s->append_lock);
	if (journal_path(s, s->journal_number + 1, path) == 0 &&
	    (!use_spare || journal_path(s, SPARE, spare) == 0))
		status = use_spare ? journal_adopt(&fresh, spare, path,
		    journal_next(s->journal)) : journal_create(&fresh, path,
		    journal_next(s->journal));
	if (status == -1) {
		log_event(LEVEL_WARN, "journal_error", "{s:s, s:s}", "path",
		    path, "error", strerror(errno));
		s->rotate_failed_ms = now;
	}
	pthread_mutex_lock(&s->append_lock);
	if (use_spare)
		s->spare_ready = false;
	old = s->journal;
	if (status == 0) {
		s->journal = fresh;
		s->journal_number++;
		s->committed = journal_committed(fresh);
	}
	pthread_mutex_unlock(&s->append_lock);
	if (status == 0) {
		s->preallocated = use_spare;
		journal_close(old);
	}
}

/*
 * Have a spare ready for the next journal, if logs pour in. The
 * forwarder's thread, when it waits or replays: writing megabytes of zeros
 * is no work for the listener's.
 */
static void
prepare_spare(struct spool *s)
{
	char	path[PATH_MAX];
	int64_t	now = clock_monotonic_ms();
	bool	ready;

	pthread_mutex_lock(&s->append_lock);
	ready = s->spare_ready || (s->committed < SPARE_AFTER &&
	    s->journal_number == s->first_journal);
	pthread_mutex_unlock(&s->append_lock);
	if (ready || now - s->spare_tried_ms < SPARE_RETRY_MS)
		return;
	s->spare_tried_ms = now;
	if (journal_path(s, SPARE, path) == -1 || journal_prepare(path,
	    SPARE_SIZE) == -1) {
		log_event(LEVEL_WARN, "journal_error", "{s:s, s:s}", "path",
		    path, "error", strerror(errno));
		return;
	}
	pthread_mutex_lock(&s->append_lock);
	s->spare_ready = true;
	pthread_mutex_unlock(&s->append_lock);
}

/*
 * Make every record appended since the last commit durable, with one
 * sync. On failure none of them is stored, and their keys are given
 * again. The listener's thread only.
 */
int
spool_commit(struct spool *s)
{
	int	status, saved;

	status = journal_commit(s->journal);
	saved = errno;
	pthread_mutex_lock(&s->append_lock);
	if (status == 0) {
		s->committed = journal_committed(s->journal);
		s->bytes += s->pending_bytes;
	} else {
		snprintf(s->append_error, sizeof s->append_error,
		    "journal: write: %s", strerror(saved));
		s->next = journal_next(s->journal);
	}
	s->pending_bytes = 0;
	pthread_mutex_unlock(&s->append_lock);
	return (status);
}

/*
 * Begin a new journal if this one is long enough, or if it was begun from
 * nothing and a spare is ready. The listener's thread, after it answered
 * the calls of a commit: no call waits for the files this makes.
 */
void
spool_roll(struct spool *s)
{
	bool	full;

	pthread_mutex_lock(&s->append_lock);
	full = s->committed >= JOURNAL_ROTATE ||
	    (!s->preallocated && s->spare_ready);
	pthread_mutex_unlock(&s->append_lock);
	if (full)
		rotate(s);
}

const char *
spool_append_error(struct spool *s)
{
	return (s->append_error);
}

/*
 * Before GDBM is first changed, the clean mark goes, on disk. A run that
 * ends without changing it, however it ends, leaves a file that needs no
 * recovery.
 */
static int
mark_open(struct spool *s)
{
	if (s->marked_open)
		return (0);
	if (gdbm_delete(s->db, name_key("clean")) != 0 &&
	    gdbm_errno != GDBM_ITEM_NOT_FOUND)
		return (fail(s, "mark open"));
	if (gdbm_sync(s->db) != 0)
		return (fail(s, "sync"));
	s->marked_open = true;
	return (0);
}

/* Write both ends and the byte count, then sync the file. */
static int
sync_file(struct spool *s)
{
	uint64_t	bytes;

	if (usable(s) == -1 || mark_open(s) == -1)
		return (-1);
	pthread_mutex_lock(&s->append_lock);
	bytes = s->bytes;
	pthread_mutex_unlock(&s->append_lock);
	if (meta_put(s, "head", s->head) != 0 ||
	    meta_put(s, "next", s->moved) != 0 ||
	    meta_put(s, "bytes", bytes) != 0)
		return (fail(s, "store bookkeeping"));
	if (gdbm_sync(s->db) != 0)
		return (fail(s, "sync"));
	s->removals = 0;
	return (0);
}

/* Sync GDBM when enough was removed, or a removal waited long enough. */
static int
sync_if_due(struct spool *s)
{
	if (s->removals >= REMOVALS_PER_SYNC || (s->removals > 0 &&
	    clock_monotonic_ms() - s->removed_ms >= SYNC_AFTER_MS))
		return (sync_file(s));
	return (0);
}

static int
store_entry(struct spool *s, uint64_t seq, const void *data, size_t size)
{
	unsigned char	buf[KEY_SIZE];
	datum		value;

	if (seq < s->head)
		return (0);	/* delivered before a crash, kept by GDBM */
	if (mark_open(s) == -1)
		return (-1);
	value.dptr = (char *)data;
	value.dsize = (int)size;
	if (gdbm_store(s->db, sequence_key(seq, buf), value,
	    GDBM_REPLACE) != 0)
		return (fail(s, "store"));
	if (seq >= s->moved)
		s->moved = seq + 1;
	return (0);
}

/*
 * An older journal is in GDBM whole: sync GDBM, and only then delete it.
 * Its removal need not be synced: if it came back, moving it again would
 * change nothing.
 */
static int
retire_journal(struct spool *s)
{
	if (sync_file(s) == -1)
		return (-1);
	journal_reader_close(s->mover);
	s->mover = NULL;
	remove_journal(s, s->mover_number++);
	return (0);
}

/* Open the journal to move next; 0 if there is none to open yet. */
static int
open_mover(struct spool *s, uint64_t current)
{
	char	path[PATH_MAX];

	while (s->mover == NULL && s->mover_number <= current) {
		if (journal_path(s, s->mover_number, path) == -1)
			return (-1);
		if (journal_reader_open(&s->mover, path) == 0)
			return (1);
		if (errno == EBADMSG && s->mover_number < current) {
			/* A reader writes nothing: it only passes it by. */
			if (!s->reader)
				set_journal_aside(s, path, 0);
		} else if (errno != ENOENT || s->mover_number == current) {
			snprintf(s->error, sizeof s->error, "journal %s: %s",
			    path, strerror(errno));
			return (-1);
		}
		s->mover_number++;
	}
	return (s->mover != NULL);
}

/*
 * Move committed journal entries into GDBM, at most budget of them, and of
 * the journal taking appends only if with_current is set. Returns 1 when
 * there may be more, 0 when all are moved, -1 on error. A failed store
 * starts that journal over at the next call: storing an entry twice
 * changes nothing.
 */
static int
move_entries(struct spool *s, size_t budget, bool with_current)
{
	uint64_t	 current, seq;
	off_t		 limit;
	const void	*data;
	size_t		 size;
	char		 path[PATH_MAX];
	int		 found;

	for (; budget > 0; budget--) {
		pthread_mutex_lock(&s->append_lock);
		current = s->journal_number;
		limit = s->committed;
		pthread_mutex_unlock(&s->append_lock);
		if (!with_current && s->mover_number >= current)
			return (0);
		if ((found = open_mover(s, current)) <= 0)
			return (found);
		found = journal_read(s->mover, s->mover_number < current ? -1 :
		    limit, &seq, &data, &size);
		if (found == 1 && store_entry(s, seq, data, size) == 0)
			continue;
		if (found == 0 && s->mover_number == current)
			return (0);
		if (found == 0 && retire_journal(s) == 0)
			continue;
		if (found == -1 && errno == EBADMSG &&
		    s->mover_number < current) {
			/* An older journal, whole when it was closed. */
			if (journal_path(s, s->mover_number, path) == 0)
				set_journal_aside(s, path,
				    journal_reader_offset(s->mover));
			journal_reader_close(s->mover);
			s->mover = NULL;
			s->mover_number++;
			continue;
		}
		if (found == -1)
			snprintf(s->error, sizeof s->error, "journal: %s",
			    strerror(errno));
		journal_reader_close(s->mover);
		s->mover = NULL;
		return (-1);
	}
	return (1);
}

/*
 * Move the journals closed by now into GDBM, a batch at a time, recovering
 * GDBM first if it was left uncleanly, and sync removals that are due.
 * The forwarder's thread, when it has time. The journal taking appends is
 * left alone: its entries are moved when they are wanted, so that syncing
 * GDBM does not compete with the listener's commits while logs pour in.
 */
int
spool_settle(struct spool *s)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = usable(s) == -1 ? -1 : move_entries(s, MOVE_BATCH, false);
	if (status != -1)
		status = sync_if_due(s);
	pthread_mutex_unlock(&s->lock);
	prepare_spare(s);
	return (status == -1 ? -1 : 0);
}

/* Removals so far are on disk when this returns 0. */
int
spool_sync(struct spool *s)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	/* Moves need no sync: their journal stays until GDBM is synced. */
	status = s->removals > 0 ? sync_file(s) : 0;
	pthread_mutex_unlock(&s->lock);
	return (status);
}

/* Record seq: 1 and a malloc'd copy in *value, 0 if absent, -1 on error. */
static int
fetch(struct spool *s, uint64_t seq, void **value, size_t *size)
{
	unsigned char	buf[KEY_SIZE];
	datum		data;

	data = gdbm_fetch(s->db, sequence_key(seq, buf));
	if (data.dptr == NULL)
		return (gdbm_errno == GDBM_ITEM_NOT_FOUND ? 0 :
		    fail(s, "fetch"));
	*value = data.dptr;
	*size = (size_t)data.dsize;
	return (1);
}

/* A reader's look into the journals for a record GDBM does not have. */
static int
fetch_journaled(struct spool *s, uint64_t seq, void **value, size_t *size)
{
	const void	*data;
	uint64_t	 got;
	int		 found;

	if (s->mover != NULL && journal_reader_next(s->mover) > seq) {
		journal_reader_close(s->mover);
		s->mover = NULL;
		s->mover_number = s->first_journal;
	}
	while (open_mover(s, s->journal_number) == 1) {
		while ((found = journal_read(s->mover, -1, &got, &data,
		    size)) == 1 && got < seq)
			;
		if (found == 1 && got > seq)
			return (0);	/* in no journal */
		if (found == 1)
			return ((*value = malloc(*size)) == NULL ? -1 :
			    (memcpy(*value, data, *size), 1));
		if (found == -1)
			return (-1);
		journal_reader_close(s->mover);
		s->mover = NULL;
		s->mover_number++;
	}
	return (0);
}

int
spool_get(struct spool *s, uint64_t seq, void **value, size_t *size)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = fetch(s, seq, value, size);
	if (status == 0 && s->reader)
		status = fetch_journaled(s, seq, value, size);
	pthread_mutex_unlock(&s->lock);
	return (status);
}

/* The range of keys that may hold records: [*head, *next). */
void
spool_range(struct spool *s, uint64_t *head, uint64_t *next)
{
	pthread_mutex_lock(&s->lock);
	*head = s->head;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&s->append_lock);
	*next = s->next;
	pthread_mutex_unlock(&s->append_lock);
}

/* Move entries until the head is in GDBM or none is left to move. */
static int
settle_head(struct spool *s)
{
	int	more = 1;

	if (usable(s) == -1)
		return (-1);
	while (more == 1 && s->head >= s->moved)
		more = move_entries(s, MOVE_BATCH, true);
	return (more == -1 ? -1 : 0);
}

/*
 * The oldest record: 1 and a malloc'd copy in *value, 0 if the spool is
 * empty, -1 on error.
 */
int
spool_first(struct spool *s, uint64_t *seq, void **value, size_t *size)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = settle_head(s);
	while (status == 0 && s->head < s->moved) {
		status = fetch(s, s->head, value, size);
		if (status == 1)
			*seq = s->head;
		else if (status == -1 && gdbm_needs_recovery(s->db))
			break;	/* recovered at the next call */
		else {
			/* Absent, or unreadable but not flagged: lost. */
			status = 0;
			if (missing(s, s->head) == 0)
				s->head++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	/* Logs may pour in during a long replay too. */
	prepare_spare(s);
	return (status);
}

/* Remove record seq, of size bytes, as returned by spool_first. */
int
spool_remove(struct spool *s, uint64_t seq, size_t size)
{
	unsigned char	buf[KEY_SIZE];
	int		status = 0;

	pthread_mutex_lock(&s->lock);
	if (usable(s) == -1 || mark_open(s) == -1)
		status = -1;
	else if (gdbm_delete(s->db, sequence_key(seq, buf)) != 0 &&
	    gdbm_errno != GDBM_ITEM_NOT_FOUND)
		status = fail(s, "delete");
	else {
		if (seq == s->head)
			s->head++;
		if (s->removals++ == 0)
			s->removed_ms = clock_monotonic_ms();
		status = sync_if_due(s);
	}
	pthread_mutex_unlock(&s->lock);
	if (status == 0) {
		pthread_mutex_lock(&s->append_lock);
		s->bytes -= size < s->bytes ? size : s->bytes;
		pthread_mutex_unlock(&s->append_lock);
	}
	return (status);
}

uint64_t
spool_count(struct spool *s)
{
	uint64_t	head, next;

	spool_range(s, &head, &next);
	return (next > head ? next - head : 0);
}

const char *
spool_error(struct spool *s)
{
	return (s->error);
}

/* GDBM holds everything, synced: the journals are not needed any more. */
static void
remove_journals(struct spool *s)
{
	uint64_t	number;

	journal_reader_close(s->mover);
	s->mover = NULL;
	journal_close(s->journal);
	s->journal = NULL;
	for (number = s->first_journal; number > 0 &&
	    number <= s->journal_number; number++)
		remove_journal(s, number);
	remove_journal(s, SPARE);
}

/* Nothing is left: the journals go, then the GDBM file. */
static int
remove_database(struct spool *s)
{
	/* Synced first: a crash in between leaves a file that says so. */
	if (sync_file(s) == -1)
		return (-1);
	remove_journals(s);
	/* The file goes next: how its close went no longer matters. */
	(void)gdbm_close(s->db);
	s->db = NULL;
	if (unlink(s->path) == -1) {
		snprintf(s->error, sizeof s->error, "unlink %s: %s", s->path,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Move every journal entry into GDBM, then close it: marked clean, with
 * the journals gone, or deleted when empty and remove_if_empty is set.
 * A file never recovered is left as it is, journals and all, for the next
 * run to recover.
 */
static int
close_database(struct spool *s, int remove_if_empty)
{
	int	status = 0, more = 1;

	while (more == 1 && !s->recovery_due)
		more = move_entries(s, MOVE_BATCH, true);
	if (s->recovery_due || more == -1) {
		/* Not marked clean: the next run recovers it anyway. */
		(void)gdbm_close(s->db);
		return (more == -1 ? -1 : 0);
	}
	if (remove_if_empty && s->head == s->moved &&
	    remove_database(s) == 0)
		return (0);
	if (s->db == NULL)
		return (-1);
	/* A file not changed since it was opened is still marked clean. */
	if (s->marked_open && meta_put(s, "clean", 1) != 0)
		status = fail(s, "mark clean");
	else if (s->marked_open)
		status = sync_file(s);
	if (gdbm_close(s->db) != 0 && status == 0)
		status = fail(s, "close");
	if (status == 0)
		remove_journals(s);
	return (status);
}

/*
 * Close the spool, marking it clean. An empty spool is deleted instead when
 * remove_if_empty is set: nothing in it is left to keep. One that was not
 * opened in full is left as it was.
 */
int
spool_close(struct spool *s, int remove_if_empty)
{
	int	status = 0;

	if (s == NULL)
		return (0);
	if (s->db != NULL && !s->open)
		gdbm_close(s->db);
	else if (s->db != NULL)
		status = close_database(s, remove_if_empty);
	if (status != 0)
		log_event(LEVEL_ERROR, "spool_error", "{s:s, s:s}", "path",
		    s->path, "error", s->error);
	journal_reader_close(s->mover);
	journal_close(s->journal);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->append_lock);
	free(s->path);
	free(s);
	return (status);
}
