/*
 * spool_files.c: the spool's files under DIR, by name, and what a crash
 * or an older echopost left there.
 *
 *	echopost.spool.sealed.FIRST-END	records FIRST to END-1 (sealed.c)
 *	echopost.spool.journal.N	journals, N counting up (journal.c)
 *	echopost.spool.journal.spare	zeros for the next journal
 *	echopost.spool.position		the head (position.c)
 *	echopost.spool			a spool of echopost 1, imported
 *	echopost.spool.~N~		its copies, from a recovery of echopost 1
 *
 * A file being built has a temporary name (.building, .importing) and is
 * removed at the next open if a crash left it: what it was made from is
 * still there.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "files.h"
#include "journal.h"
#include "log.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"

/* What the directory holds besides sealed files, which become segments. */
struct listing {
	uint64_t	*journals;	/* their numbers, in no order */
	size_t		 count;
	bool		 legacy;	/* echopost.spool */
	uint64_t	 backup;	/* the newest echopost.spool.~N~ */
};

/* The spool's path and a suffix made from fmt: a file of the spool. */
int
spool_name(const struct spool *s, char path[PATH_MAX], const char *fmt, ...)
{
	va_list	ap;
	int	n, m;

	n = snprintf(path, PATH_MAX, "%s", s->path);
	va_start(ap, fmt);
	m = n < PATH_MAX ? vsnprintf(path + n, PATH_MAX - n, fmt, ap) : 0;
	va_end(ap);
	if (n >= PATH_MAX || m < 0 || m >= PATH_MAX - n) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

/* A journal's path, or the spare's for number SPARE. */
int
journal_file(const struct spool *s, uint64_t number, char path[PATH_MAX])
{
	if (number == SPARE)
		return (spool_name(s, path, SPARE_SUFFIX));
	return (spool_name(s, path, JOURNAL_SUFFIX "%" PRIu64, number));
}

int
sealed_file(const struct spool *s, uint64_t first, uint64_t end,
    char path[PATH_MAX])
{
	return (spool_name(s, path, SEALED_SUFFIX "%" PRIu64 "-%" PRIu64,
	    first, end));
}

/* Delete a file of the spool; one already gone is fine. */
void
remove_file(const char *path)
{
	if (unlink(path) == -1 && errno != ENOENT)
		log_event(LEVEL_WARN, "spool_file_error", "{s:s, s:s}", "path",
		    path, "error", strerror(errno));
}

/*
 * Rename a damaged file to path.damaged-TIME, for a person to look at; it
 * is never deleted. event names what it was.
 */
void
set_aside(const char *path, const char *event, const char *why)
{
	char	when[TIME_BUFSIZE], kept[PATH_MAX];

	format_time(clock_realtime_us(), when);
	if (snprintf(kept, sizeof kept, "%s.damaged-%s", path, when) >=
	    (int)sizeof kept || rename(path, kept) == -1)
		strlcpy(kept, path, sizeof kept);
	log_event(LEVEL_ERROR, event, "{s:s, s:s, s:s}", "path", path,
	    "kept_as", kept, "error", why);
}

/* Is name base, then suffix, then a decimal number (and what follows)? */
static bool
numbered(const char *name, const char *base, const char *suffix,
    uint64_t *number, char **rest)
{
	size_t	len = strlen(base), slen = strlen(suffix);

	if (strncmp(name, base, len) != 0 ||
	    strncmp(name + len, suffix, slen) != 0 ||
	    !isdigit((unsigned char)name[len + slen]))
		return (false);
	errno = 0;
	*number = strtoull(name + len + slen, rest, 10);
	return (errno == 0);
}

/*
 * A temporary file of ours, or the new file of a recovery of echopost 1
 * (its name plus six letters or digits, from gdbm_recover): a crash left
 * it, and what it was made from is still there.
 */
static bool
leftover(const char *name, const char *base)
{
	size_t	len = strlen(base), i;

	if (strncmp(name, base, len) != 0)
		return (false);
	name += len;
	if (strncmp(name, BUILD_SUFFIX, strlen(BUILD_SUFFIX)) == 0 ||
	    strncmp(name, IMPORT_SUFFIX, strlen(IMPORT_SUFFIX)) == 0)
		return (true);
	if (name[0] != '.' || strlen(name + 1) != 6)
		return (false);
	for (i = 1; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]))
			return (false);
	return (true);
}

/* Take note of one name in the directory. */
static int
list_name(struct spool *s, const char *parent, const char *base,
    const char *name, struct listing *l)
{
	struct stat	 sb;
	uint64_t	 a, b, *grown;
	char		*rest, path[PATH_MAX];

	if (snprintf(path, sizeof path, "%s/%s", parent, name) >=
	    (int)sizeof path)
		return (0);
	if (strcmp(name, base) == 0) {
		/* Never a link planted to be read, or renamed, as a spool. */
		if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			l->legacy = true;
		else
			log_event(LEVEL_WARN, "spool_ignored", "{s:s, s:s}",
			    "path", path, "reason", "not a regular file");
	}
	else if (numbered(name, base, SEALED_SUFFIX, &a, &rest) &&
	    rest[0] == '-' && isdigit((unsigned char)rest[1]) &&
	    (b = strtoull(rest + 1, &rest, 10)) > a && *rest == '\0')
		return (add_segment(s, SEGMENT_SEALED, 0, a, b));
	else if (numbered(name, base, JOURNAL_SUFFIX, &a, &rest) &&
	    *rest == '\0' && a != SPARE) {
		if ((grown = reallocarray(l->journals, l->count + 1,
		    sizeof *grown)) == NULL)
			return (-1);
		l->journals = grown;
		l->journals[l->count++] = a;
	} else if (numbered(name, base, ".~", &a, &rest) &&
	    strcmp(rest, "~") == 0 && a > l->backup)
		l->backup = a;
	else if (!s->reader && leftover(name, base) && unlink(path) == 0)
		log_event(LEVEL_INFO, "spool_leftover_removed", "{s:s}",
		    "path", path);
	return (0);
}

static int
list_directory(struct spool *s, struct listing *l)
{
	struct dirent	*entry;
	DIR		*dir;
	const char	*base;
	char		 parent[PATH_MAX];
	int		 status = 0;

	if ((dir = open_parent(s->path, parent, &base)) == NULL) {
		snprintf(s->error, sizeof s->error, "%s: %s", parent,
		    strerror(errno));
		return (-1);
	}
	while (status == 0 && (errno = 0, entry = readdir(dir)) != NULL)
		status = list_name(s, parent, base, entry->d_name, l);
	if (status == 0 && errno != 0)
		status = -1;
	if (status == -1)
		snprintf(s->error, sizeof s->error, "%s: %s", parent,
		    strerror(errno));
	closedir(dir);
	return (status);
}

static int
by_number(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/*
 * The newest journal takes appends again. One without a whole header was
 * being begun when a run died and never took an entry: it goes, and the
 * one before is the newest. Returns its number, or 0 if none is left.
 */
static int
resume_newest(struct spool *s, struct listing *l, uint64_t *newest)
{
	char	path[PATH_MAX];

	*newest = 0;
	while (l->count > 0) {
		if (journal_file(s, l->journals[l->count - 1], path) == -1)
			break;
		if (journal_resume(&s->journal, path) == 0) {
			*newest = l->journals[l->count - 1];
			return (0);
		}
		if (errno != EBADMSG)
			break;
		log_event(LEVEL_WARN, "journal_removed", "{s:s, s:s}", "path",
		    path, "reason", "no header: it was being begun");
		if (unlink(path) == -1)
			break;
		l->count--;
	}
	if (l->count == 0)
		return (0);
	snprintf(s->error, sizeof s->error, "journal %s: %s", path,
	    strerror(errno));
	return (-1);
}

/*
 * Each journal is a segment from its first record to the next one's
 * first; the newest grows. A reader takes the newest's end from its
 * entries. An older journal without a whole header is damaged: set
 * aside, its records reported missing when their turn comes.
 */
static int
add_journals(struct spool *s, struct listing *l, uint64_t newest)
{
	struct journal_reader	*r;
	struct segment		*seg;
	char			 path[PATH_MAX];
	uint64_t		 seq;
	const void		*data;
	size_t			 i, size;

	for (i = 0; i < l->count; i++) {
		if (journal_file(s, l->journals[i], path) == -1 ||
		    journal_reader_open(&r, path) == -1) {
			if (errno != EBADMSG)
				return (-1);
			if (!s->reader)
				set_aside(path, "journal_damaged", "no header");
			continue;
		}
		if (s->count > 0 && (seg = &s->segments[s->count - 1])->kind ==
		    SEGMENT_JOURNAL && seg->end == GROWING)
			seg->end = journal_reader_first(r);
		if (add_segment(s, SEGMENT_JOURNAL, l->journals[i],
		    journal_reader_first(r), GROWING) == -1) {
			journal_reader_close(r);
			return (-1);
		}
		if (s->reader && i == l->count - 1) {
			while (journal_read(r, -1, &seq, &data, &size) == 1)
				;
			s->next = journal_reader_next(r);
		}
		journal_reader_close(r);
	}
	s->tracked = newest;
	return (0);
}

/*
 * Find the spool's files: sealed files and journals become segments, the
 * newest journal takes appends again (not for a reader), and an echopost 1
 * spool is noted in *legacy. Leftovers of a crash go.
 */
int
scan_directory(struct spool *s, bool *legacy)
{
	struct listing	l;
	uint64_t	newest = 0;
	char		path[PATH_MAX];
	int		status = -1;

	memset(&l, 0, sizeof l);
	if (list_directory(s, &l) == -1)
		goto out;
	if (l.count > 0)
		qsort(l.journals, l.count, sizeof *l.journals, by_number);
	if (!s->reader && resume_newest(s, &l, &newest) == -1)
		goto out;
	if (add_journals(s, &l, newest) == -1) {
		snprintf(s->error, sizeof s->error, "journal: %s",
		    strerror(errno));
		goto out;
	}
	sort_segments(s);
	*legacy = l.legacy;
	/*
	 * A recovery of echopost 1 renamed the spool to its copy, then the
	 * new file to the spool; a crash between the two left only the copy,
	 * which holds everything: it is the spool again.
	 */
	if (!l.legacy && l.backup > 0 && !s->reader) {
		if (spool_name(s, path, ".~%" PRIu64 "~", l.backup) == -1 ||
		    rename(path, s->path) == -1 || sync_parent(s->path) == -1) {
			snprintf(s->error, sizeof s->error, "rename %s: %s",
			    path, strerror(errno));
			goto out;
		}
		*legacy = true;
	}
	status = 0;
out:
	free(l.journals);
	return (status);
}

/* The copies a recovery of echopost 1 kept: older states of its spool. */
static void
remove_backups(struct spool *s)
{
	struct dirent	*entry;
	DIR		*dir;
	const char	*base;
	char		 parent[PATH_MAX], path[PATH_MAX], *rest;
	uint64_t	 number;

	if ((dir = open_parent(s->path, parent, &base)) == NULL)
		return;
	while ((entry = readdir(dir)) != NULL)
		if (numbered(entry->d_name, base, ".~", &number, &rest) &&
		    strcmp(rest, "~") == 0 && snprintf(path, sizeof path,
		    "%s/%s", parent, entry->d_name) < (int)sizeof path) {
			remove_file(path);
			log_event(LEVEL_INFO, "spool_copy_removed", "{s:s}",
			    "path", path);
		}
	closedir(dir);
}

static bool
has_journals(const struct spool *s)
{
	size_t	i;

	for (i = 0; i < s->count; i++)
		if (s->segments[i].kind == SEGMENT_JOURNAL)
			return (true);
	return (false);
}

/*
 * An echopost 1 spool: GDBM changed in place, and never the only copy we
 * keep. Returns 1 with its head and next, if it was closed cleanly and no
 * journal is beside it, which it would have taken in at a clean close.
 */
static int
legacy_closed_cleanly(struct spool *s, uint64_t *head, uint64_t *next)
{
	struct sealed	*old;
	uint64_t	 clean = 0;
	char		*cause = NULL;
	int		 whole;

	if (sealed_open(&old, s->path, &cause) == -1) {
		free(cause);
		return (0);
	}
	whole = sealed_meta(old, "head", head) == 1;
	if (whole && !s->head_exact)
		s->head = *head;	/* a guess, for counts, until imported */
	whole = whole && !has_journals(s) &&
	    sealed_meta(old, "clean", &clean) == 1 && clean == 1 &&
	    sealed_meta(old, "next", next) == 1 && *head <= *next;
	sealed_close(old);
	return (whole);
}

/*
 * Take up an echopost 1 spool at open. A clean one becomes a sealed file
 * by its name alone; any other is imported by the forwarder's thread
 * before anything is read (spool_first, spool_settle), or now if no
 * journal says where the next record goes.
 */
int
take_up_legacy(struct spool *s)
{
	uint64_t	head, next;
	char		path[PATH_MAX];

	if (legacy_closed_cleanly(s, &head, &next)) {
		if (head < next && (sealed_file(s, head, next, path) == -1 ||
		    publish_file(s->path, path) == -1 ||
		    add_segment(s, SEGMENT_SEALED, 0, head, next) == -1)) {
			snprintf(s->error, sizeof s->error, "rename %s: %s",
			    s->path, strerror(errno));
			return (-1);
		}
		if (head == next)
			remove_file(s->path);
		sort_segments(s);
		remove_backups(s);
		log_event(LEVEL_INFO, "spool_imported", "{s:s, s:I, s:I}",
		    "path", s->path, "first", (json_int_t)head,
		    "end", (json_int_t)next);
		return (0);
	}
	s->legacy_due = true;
	return (has_journals(s) ? 0 : import_legacy(s));
}

/*
 * Copy an echopost 1 spool into a sealed file, recovered, and only then
 * delete it. One GDBM cannot read at all is set aside for a person.
 */
int
import_legacy(struct spool *s)
{
	uint64_t	 head, first, end;
	char		 work[PATH_MAX], path[PATH_MAX], *cause = NULL;
	int		 found;

	if (spool_name(s, work, IMPORT_SUFFIX) == -1) {
		snprintf(s->error, sizeof s->error, "%s", strerror(errno));
		return (-1);
	}
	found = sealed_import(s->path, work, &head, &first, &end, &cause);
	if (found == -1 && errno != EBADMSG) {
		snprintf(s->error, sizeof s->error, "import %s: %s", s->path,
		    cause != NULL ? cause : strerror(errno));
		free(cause);
		return (-1);
	}
	if (found == -1)
		set_aside(s->path, "spool_damaged", cause != NULL ? cause :
		    "unreadable");
	free(cause);
	if (found == 1) {
		/* EEXIST: imported before a crash, not deleted yet. */
		if (sealed_file(s, first, end, path) == -1 ||
		    (publish_file(work, path) == -1 && errno != EEXIST) ||
		    add_segment(s, SEGMENT_SEALED, 0, first, end) == -1) {
			snprintf(s->error, sizeof s->error, "import %s: %s",
			    path, strerror(errno));
			remove_file(work);
			return (-1);
		}
		remove_file(work);
		sort_segments(s);
		if (!s->head_exact && head < s->head)
			s->head = head;
		log_event(LEVEL_WARN, "spool_imported", "{s:s, s:I, s:I}",
		    "path", s->path, "first", (json_int_t)first,
		    "end", (json_int_t)end);
	}
	if (found != -1)
		remove_file(s->path);
	remove_backups(s);
	s->legacy_due = false;
	return (0);
}
