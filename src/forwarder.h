/*
 * forwarder.h: health checks and delivery to the Data Nadhi server.
 *
 * The forwarder runs in its own thread. It checks the server until it is
 * healthy, then sends the spool's records one at a time, oldest first, and
 * removes each once the server has answered for it. When the spool is empty
 * and the server healthy it asks main to stop listening, delivers what the
 * listener stored meanwhile, and ends. Whenever it waits, it lets the spool
 * seal the journals the listener has closed into GDBM (spool_settle).
 */
#ifndef FORWARDER_H
#define FORWARDER_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

struct session;
struct spool;

/* Where the CA certificates for https:// are; NULL: libcurl's own. */
struct tls_files {
	const char	*cacert;
	const char	*capath;
};

struct forwarder_config {
	struct tls_files tls;
	const char	*health_url;
	const char	*api_key;
	int64_t		 timeout_ms;
	int64_t		 health_interval_ms;
	bool		 progress_bar;	/* draw one on stderr, a terminal */
	bool		 replay_only;	/* no listener at all */
};

enum delivery {
	DELIVERY_DONE,		/* 2xx: delivered */
	DELIVERY_REJECTED,	/* refused for good: failure log */
	DELIVERY_RETRY		/* keep it and try again later */
};

enum forwarder_result {
	FORWARDER_DRAINED,	/* spool empty, server healthy */
	FORWARDER_STOPPED,	/* told to stop; the rest stays spooled */
	FORWARDER_FAILED	/* could not start */
};

struct forwarder;

int		 forwarder_start(struct forwarder **,
		    const struct forwarder_config *, struct spool *,
		    struct session *);
bool		 forwarder_wants_drain(struct forwarder *);
void		 forwarder_listener_closed(struct forwarder *);
bool		 forwarder_done(struct forwarder *);
void		 forwarder_stop(struct forwarder *);
enum forwarder_result forwarder_join(struct forwarder *, uint64_t *);

enum delivery	 classify_answer(CURLcode, long);
bool		 health_answer_ok(CURLcode, long);
bool		 probe_health(const char *, const struct tls_files *, int64_t,
		    long *, char [CURL_ERROR_SIZE]);
int64_t		 backoff_ms(int64_t, unsigned int);
char		*log_url(const char *);

#endif
