/*
 * spool.h: the logs not delivered yet, in one GDBM file under DIR.
 *
 * Records are keyed by a 64-bit sequence number given at append, so the
 * oldest is always at "head" and replay order is arrival order, also across
 * restarts. The spool owns its GDBM handle and lock: the listener appends
 * and syncs, the forwarder reads the head and removes it, each from its own
 * thread.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool;

int		 spool_open(struct spool **, const char *, uint64_t);
int		 spool_open_reader(struct spool **, const char *);
int		 spool_get(struct spool *, uint64_t, void **, size_t *);
void		 spool_range(struct spool *, uint64_t *, uint64_t *);
int		 spool_append(struct spool *, const void *, size_t, uint64_t *);
int		 spool_sync(struct spool *);
int		 spool_first(struct spool *, uint64_t *, void **, size_t *);
int		 spool_remove(struct spool *, uint64_t, size_t);
uint64_t	 spool_count(struct spool *);
int		 spool_close(struct spool *, int);
const char	*spool_error(struct spool *);

#endif
