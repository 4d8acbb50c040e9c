/*
 * spool.c: the GDBM spool.
 *
 * Besides the records (8-byte big-endian keys) the file holds bookkeeping
 * keys of other lengths: "head", "next" and "bytes", written at every sync
 * so that a restart finds both ends at once instead of reading every
 * record, and "clean", present only after a clean close. GDBM is not
 * crash-atomic: a file closed uncleanly can lose synced keys without an
 * error, so it is recovered before it is trusted.
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
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <gdbm.h>
#include <jansson.h>

#include "log.h"
#include "spool.h"

#define KEY_SIZE	8
/* Appends stop while the file system has less than this free. */
#define DISK_MARGIN	(8 * 1024 * 1024)
#define DISK_CHECK_MS	100
#define RECOVER_EVERY_MS 1000
#define OPEN_FLAGS	(GDBM_WRCREAT | GDBM_NOMMAP | GDBM_CLOEXEC)
#define CACHE_BUCKETS	64

struct spool {
	pthread_mutex_t	 lock;
	GDBM_FILE	 db;
	char		*path;
	uint64_t	 head;		/* oldest record, if head < next */
	uint64_t	 next;		/* key of the next append */
	uint64_t	 bytes;		/* in records, about, after a crash */
	uint64_t	 max_bytes;	/* 0: no limit but the disk's */
	int64_t		 disk_checked_ms;
	bool		 disk_low;
	bool		 reader;	/* opened by spool_open_reader */
	bool		 open;		/* opened in full: may be removed */
	bool		 rebuilt;	/* recovered once for a missing record */
	bool		 fresh;		/* the file was new or set aside */
	int64_t		 recovered_ms;	/* last gdbm_recover */
	char		 error[256];
};

static datum
sequence_key(uint64_t seq, unsigned char buf[KEY_SIZE])
{
	datum	key;
	int	i;

	for (i = KEY_SIZE - 1; i >= 0; i--, seq >>= 8)
		buf[i] = (unsigned char)seq;
	key.dptr = (char *)buf;
	key.dsize = KEY_SIZE;
	return (key);
}

static uint64_t
key_sequence(datum key)
{
	uint64_t	seq = 0;
	int		i;

	for (i = 0; i < KEY_SIZE; i++)
		seq = seq << 8 | (unsigned char)key.dptr[i];
	return (seq);
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
	datum		key, next;
	uint64_t	seq, low = UINT64_MAX, high = 0;

	datum		value;

	s->bytes = 0;
	key = gdbm_firstkey(s->db);
	while (key.dptr != NULL) {
		if (key.dsize == KEY_SIZE) {
			seq = key_sequence(key);
			if (seq < low)
				low = seq;
			if (seq >= high)
				high = seq + 1;
			value = gdbm_fetch(s->db, key);
			s->bytes += value.dptr != NULL ? value.dsize : 0;
			free(value.dptr);
		}
		next = gdbm_nextkey(s->db, key);
		free(key.dptr);
		key = next;
	}
	if (gdbm_errno != GDBM_ITEM_NOT_FOUND)
		return (fail(s, "scan"));
	s->head = low == UINT64_MAX ? 0 : low;
	s->next = high;
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

/*
 * gdbm_recover builds the new file beside the old one and renames it into
 * place; a run killed in between leaves it behind, the old file whole.
 */
static void
remove_recovery_leftovers(struct spool *s)
{
	struct dirent	*entry;
	DIR		*dir;
	char		 parent[PATH_MAX], leftover[PATH_MAX], *slash;

	strlcpy(parent, s->path, sizeof parent);
	if ((slash = strrchr(parent, '/')) == NULL)
		return;
	*slash = '\0';
	if ((dir = opendir(parent)) == NULL)
		return;
	while ((entry = readdir(dir)) != NULL) {
		if (!recovery_leftover(entry->d_name, slash + 1))
			continue;
		if (snprintf(leftover, sizeof leftover, "%s/%s", parent,
		    entry->d_name) < (int)sizeof leftover &&
		    unlink(leftover) == 0)
			log_event(LEVEL_INFO, "spool_leftover_removed",
			    "{s:s}", "path", leftover);
	}
	closedir(dir);
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
	have_next = meta_get(s, "next", &s->next);
	if (have_head == -1 || have_next == -1 ||
	    meta_get(s, "bytes", &s->bytes) == -1)
		return (fail(s, "read bookkeeping"));
	if (!have_head || !have_next || s->head > s->next)
		return (scan_ends(s));
	while ((found = record_exists(s, s->next)) == 1)
		s->next++;
	while (found != -1 && s->head < s->next &&
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

/*
 * A spool GDBM cannot open or rebuild is renamed aside, never deleted, and
 * a fresh one takes its place so that logs can be stored again.
 */
static int
set_aside(struct spool *s, const char *why)
{
	char	when[TIME_BUFSIZE], kept[PATH_MAX];

	if (s->db != NULL)
		gdbm_close(s->db);
	s->db = NULL;
	format_time(clock_realtime_us(), when);
	if (snprintf(kept, sizeof kept, "%s.damaged-%s", s->path, when) >=
	    (int)sizeof kept || rename(s->path, kept) == -1) {
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

static int
open_database(struct spool *s)
{
	uint64_t	clean = 0;
	bool		readable, closed_cleanly;
	char		why[sizeof s->error];

	remove_recovery_leftovers(s);
	if (open_file(s) == -1)
		return (-1);
	readable = meta_get(s, "clean", &clean) != -1;
	closed_cleanly = readable && clean == 1;
	if (!s->fresh && !closed_cleanly && recover(s, readable ?
	    "not closed cleanly" : gdbm_db_strerror(s->db), !readable) == -1 &&
	    (set_aside(s, s->error) == -1 || open_file(s) == -1))
		return (-1);
	if (find_ends(s, closed_cleanly) == -1) {
		/* GDBM could not answer: rebuild once, keeping a copy. */
		strlcpy(why, s->error, sizeof why);
		if (recover(s, why, true) == -1 || find_ends(s, false) == -1)
			return (-1);
	}
	if (gdbm_delete(s->db, name_key("clean")) != 0 &&
	    gdbm_errno != GDBM_ITEM_NOT_FOUND)
		return (fail(s, "mark open"));
	if (gdbm_sync(s->db) != 0)
		return (fail(s, "sync"));
	s->open = true;
	return (0);
}

/*
 * A look at the spool while its owner may be writing to it: no lock, no
 * recovery, no writes. What was synced last is what it sees.
 */
static int
open_reader(struct spool *s)
{
	s->db = gdbm_open(s->path, 0, GDBM_READER | GDBM_NOLOCK | GDBM_NOMMAP |
	    GDBM_CLOEXEC, 0, NULL);
	if (s->db == NULL) {
		snprintf(s->error, sizeof s->error, "open %s: %s", s->path,
		    gdbm_strerror(gdbm_errno));
		return (-1);
	}
	return (find_ends(s, false));
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
	s->recovered_ms = -RECOVER_EVERY_MS;
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
	int64_t		now;

	if (s->max_bytes > 0 && s->bytes + size > s->max_bytes) {
		snprintf(s->error, sizeof s->error, "spool full: %llu bytes "
		    "stored, the limit is %llu (--max-spool-size)",
		    (unsigned long long)s->bytes,
		    (unsigned long long)s->max_bytes);
		return (-1);
	}
	now = clock_monotonic_ms();
	if (s->disk_low || now - s->disk_checked_ms >= DISK_CHECK_MS) {
		s->disk_checked_ms = now;
		if (fstatvfs(gdbm_fdesc(s->db), &fs) == 0)
			s->disk_low = (uint64_t)fs.f_bavail * fs.f_frsize <
			    DISK_MARGIN + size;
	}
	if (s->disk_low) {
		snprintf(s->error, sizeof s->error, "disk full: less than "
		    "%d MiB free for %s", DISK_MARGIN >> 20, s->path);
		return (-1);
	}
	return (0);
}

int
spool_append(struct spool *s, const void *value, size_t size, uint64_t *seq)
{
	unsigned char	buf[KEY_SIZE];
	datum		data;
	int		status = -1;

	data.dptr = (char *)value;
	data.dsize = (int)size;
	pthread_mutex_lock(&s->lock);
	if (usable(s) == 0 && room_for(s, size) == 0) {
		if (gdbm_store(s->db, sequence_key(s->next, buf), data,
		    GDBM_REPLACE) != 0)
			fail(s, "store");
		else {
			*seq = s->next++;
			s->bytes += size;
			status = 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return (status);
}

/* Write both ends and the byte count, then sync the file. */
static int
sync_file(struct spool *s)
{
	if (usable(s) == -1)
		return (-1);
	if (meta_put(s, "head", s->head) != 0 ||
	    meta_put(s, "next", s->next) != 0 ||
	    meta_put(s, "bytes", s->bytes) != 0)
		return (fail(s, "store bookkeeping"));
	if (gdbm_sync(s->db) != 0)
		return (fail(s, "sync"));
	return (0);
}

/* Everything appended or removed so far is on disk when this returns 0. */
int
spool_sync(struct spool *s)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = sync_file(s);
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

int
spool_get(struct spool *s, uint64_t seq, void **value, size_t *size)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = fetch(s, seq, value, size);
	pthread_mutex_unlock(&s->lock);
	return (status);
}

/* The range of keys that may hold records: [*head, *next). */
void
spool_range(struct spool *s, uint64_t *head, uint64_t *next)
{
	pthread_mutex_lock(&s->lock);
	*head = s->head;
	*next = s->next;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The oldest record: 1 and a malloc'd copy in *value, 0 if the spool is
 * empty, -1 on error.
 */
int
spool_first(struct spool *s, uint64_t *seq, void **value, size_t *size)
{
	int	status = 0;

	pthread_mutex_lock(&s->lock);
	if (usable(s) == -1)
		status = -1;
	while (status == 0 && s->head < s->next) {
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
	return (status);
}

/* Remove record seq, of size bytes, as returned by spool_first. */
int
spool_remove(struct spool *s, uint64_t seq, size_t size)
{
	unsigned char	buf[KEY_SIZE];
	int		status = 0;

	pthread_mutex_lock(&s->lock);
	if (usable(s) == -1)
		status = -1;
	else if (gdbm_delete(s->db, sequence_key(seq, buf)) != 0 &&
	    gdbm_errno != GDBM_ITEM_NOT_FOUND)
		status = fail(s, "delete");
	else {
		if (seq == s->head)
			s->head++;
		s->bytes -= size < s->bytes ? size : s->bytes;
	}
	pthread_mutex_unlock(&s->lock);
	return (status);
}

uint64_t
spool_count(struct spool *s)
{
	uint64_t	count;

	pthread_mutex_lock(&s->lock);
	count = s->next - s->head;
	pthread_mutex_unlock(&s->lock);
	return (count);
}

const char *
spool_error(struct spool *s)
{
	return (s->error);
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
	if (s->db != NULL && (s->reader || !s->open))
		gdbm_close(s->db);
	else if (s->db != NULL) {
		if (remove_if_empty && s->head == s->next) {
			gdbm_close(s->db);
			if (unlink(s->path) == -1) {
				snprintf(s->error, sizeof s->error,
				    "unlink %s: %s", s->path, strerror(errno));
				status = -1;
			}
		} else {
			/* The clean mark goes in with the last sync. */
			if (meta_put(s, "clean", 1) != 0)
				status = fail(s, "mark clean");
			else
				status = sync_file(s);
			if (gdbm_close(s->db) != 0 && status == 0)
				status = fail(s, "close");
		}
	}
	if (status != 0)
		log_event(LEVEL_ERROR, "spool_error", "{s:s, s:s}", "path",
		    s->path, "error", s->error);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
	return (status);
}
