// The process's TLS session cache, shared by every worker's SSL_CTX (see tg_session_cache_install), and the clock
// session ages are measured on.
#define _GNU_SOURCE
#include "CTollgate.h"
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ---------------------------------------------------------------------------------------------- clock

static _Atomic long long clock_offset;         // tests move the clock forward instead of waiting hours

// CLOCK_BOOTTIME: monotonic, and it counts the time the machine (or a paused virtual machine) was suspended, so a
// session's two hours and a chain's day are wall time as a client lives it.
static long long cache_clock_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (long long)ts.tv_sec + atomic_load_explicit(&clock_offset, memory_order_relaxed);
}

void tg_tls_clock_advance(long long seconds) { atomic_fetch_add(&clock_offset, seconds); }

// ---------------------------------------------------------------------------------------------- session cache
//
// Resumption through a session cache in the server, as Mozilla's intermediate profile configures nginx
// (`ssl_session_cache shared`, `ssl_session_tickets off`): a TLS 1.2 session ID and a TLS 1.3 ticket (stateful,
// SSL_OP_NO_TICKET: the ticket is the session's ID) each name an entry here. One cache for the process, so a
// session made on one worker resumes on any other; a client only ever names an entry, it never hands the server
// session state to decode. No ticket keys exist, so none can leak to decrypt recorded traffic.
//
// Entries hold the session as DER (i2d_SSL_SESSION) and are spread over 16 shards by their (random) ID, each with
// its own lock, hash chains and least-recently-used list; a shard over its share of `cache_bytes` drops its least
// recently used entries. An entry ends `SSL_SESSION_get_timeout` after it was made (two hours, the lifetime
// hint a TLS 1.3 client is told), and a chain of resumptions a day after the full handshake that began it: every
// session carries that handshake's time (ticket_appdata, which OpenSSL copies into the session a TLS 1.3
// resumption issues next), so however often a client resumes, it checks the certificate again within a day
// (RFC 8446 section 4.6.1). A certificate change empties the cache.

#define SHARDS 16
#define BUCKETS 1024                            // per shard; a power of two
#define MAX_DER 4096                            // a session bigger than this is not cached
#define MAX_LOOKUPS 8                           // per connection; see session_get

typedef struct session_entry {
    struct session_entry *chain;                // next in the hash bucket
    struct session_entry *newer, *older;        // least-recently-used list
    long long began;                            // the full handshake that began the chain
    long long expires;
    size_t size;                                // what the entry counts against the budget
    unsigned int id_len;
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    size_t der_len;
    unsigned char der[];
} session_entry;

typedef struct {
    pthread_mutex_t lock;
    session_entry *buckets[BUCKETS];
    session_entry *newest, *oldest;
    size_t bytes;
    size_t count;
} session_shard;

static session_shard shards[SHARDS];
static pthread_once_t shards_once = PTHREAD_ONCE_INIT;
const size_t TG_SESSION_CACHE_DEFAULT_BYTES = 10u << 20; // nginx's `shared:SSL:10m`: tens of thousands of sessions
static _Atomic size_t cache_bytes = 10u << 20;  // TG_SESSION_CACHE_DEFAULT_BYTES (a constant expression here)
static _Atomic unsigned long cache_generation;  // moves when the cache is emptied or resized
static const long long session_max_age = 86400;

static int lookups_index = -1;                  // SSL ex_data: the lookups a connection made so far

static void init_shards(void) {
    for (int i = 0; i < SHARDS; i++) pthread_mutex_init(&shards[i].lock, NULL);
    lookups_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

// Whether `ssl` may look one more session up. A TLS 1.3 ClientHello may list as many PSK identities as fit in 64 KB
// (about 1,700 of our 32-byte IDs), and OpenSSL looks each one up until one resumes; one real ID listed 1,700 times
// made the server decode 1,700 sessions for one ClientHello, about 18 times a plain handshake's CPU. Clients offer
// one (two with a HelloRetryRequest), so after MAX_LOOKUPS the rest count as unknown without being looked at.
static int may_look_up(SSL *ssl) {
    if (lookups_index < 0) return 1;
    intptr_t done = (intptr_t)SSL_get_ex_data(ssl, lookups_index);
    if (done >= MAX_LOOKUPS) return 0;
    return SSL_set_ex_data(ssl, lookups_index, (void *)(done + 1)) == 1;
}

static uint64_t id_hash(const unsigned char *id, unsigned int len) {
    uint64_t h = 1469598103934665603ull;     // FNV-1a: IDs are random, a client only chooses what it looks up
    for (unsigned int i = 0; i < len; i++) h = (h ^ id[i]) * 1099511628211ull;
    return h;
}

static session_shard *shard_for(uint64_t hash) {
    pthread_once(&shards_once, init_shards);
    return &shards[hash % SHARDS];
}

static session_entry **bucket_for(session_shard *shard, uint64_t hash) {
    return &shard->buckets[(hash / SHARDS) & (BUCKETS - 1)];
}

static session_entry **find_locked(session_shard *shard, uint64_t hash, const unsigned char *id, unsigned int len) {
    session_entry **at = bucket_for(shard, hash);
    while (*at && !((*at)->id_len == len && memcmp((*at)->id, id, len) == 0)) at = &(*at)->chain;
    return at;
}

static void unlink_lru_locked(session_shard *shard, session_entry *e) {
    if (e->newer) e->newer->older = e->older; else shard->newest = e->older;
    if (e->older) e->older->newer = e->newer; else shard->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest_locked(session_shard *shard, session_entry *e) {
    e->older = shard->newest;
    e->newer = NULL;
    if (shard->newest) shard->newest->newer = e; else shard->oldest = e;
    shard->newest = e;
}

// Unlinks the entry `at` points to from its bucket and the list, and frees it.
static void remove_locked(session_shard *shard, session_entry **at) {
    session_entry *e = *at;
    *at = e->chain;
    unlink_lru_locked(shard, e);
    shard->bytes -= e->size;
    shard->count--;
    OPENSSL_clear_free(e, e->size);
}

static void remove_entry_locked(session_shard *shard, session_entry *e) {
    uint64_t hash = id_hash(e->id, e->id_len);
    remove_locked(shard, find_locked(shard, hash, e->id, e->id_len));
}

// When the session's chain of resumptions began: the time it carries, or now for a full handshake (then written
// into it, so the sessions later resumptions issue carry it on).
static long long chain_began(SSL_SESSION *session, long long now) {
    void *data = NULL;
    size_t len = 0;
    long long began;
    if (SSL_SESSION_get0_ticket_appdata(session, &data, &len) == 1 && data && len == sizeof(began)) {
        memcpy(&began, data, sizeof(began));
        return began;
    }
    if (SSL_SESSION_set1_ticket_appdata(session, &now, sizeof(now)) != 1) return -1;
    return now;
}

static int session_new(SSL *ssl, SSL_SESSION *session) {
    (void)ssl;
    size_t budget = atomic_load_explicit(&cache_bytes, memory_order_relaxed) / SHARDS;
    if (budget == 0) return 0; // `tls-session-cache = 0`: nothing is kept
    long long now = cache_clock_seconds();
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(session, &id_len);
    long long began = chain_began(session, now);
    if (!id || id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH || began < 0 || now - began >= session_max_age) {
        return 0;
    }
    int der_len = i2d_SSL_SESSION(session, NULL);
    if (der_len <= 0 || der_len > MAX_DER) return 0;
    size_t size = sizeof(session_entry) + (size_t)der_len;
    session_entry *e = OPENSSL_malloc(size);
    if (!e) return 0;
    unsigned char *p = e->der;
    if (i2d_SSL_SESSION(session, &p) != der_len) {
        OPENSSL_clear_free(e, size);
        return 0;
    }
    e->der_len = (size_t)der_len;
    e->size = size;
    e->id_len = id_len;
    memcpy(e->id, id, id_len);
    e->began = began;
    long timeout = SSL_SESSION_get_timeout(session);
    e->expires = now + (timeout > 0 ? timeout : 0);
    if (e->expires > began + session_max_age) e->expires = began + session_max_age;

    uint64_t hash = id_hash(id, id_len);
    session_shard *shard = shard_for(hash);
    pthread_mutex_lock(&shard->lock);
    session_entry **at = find_locked(shard, hash, id, id_len);
    if (*at) remove_locked(shard, at);
    while (shard->oldest && shard->bytes + size > budget) remove_entry_locked(shard, shard->oldest);
    if (shard->bytes + size <= budget) {
        at = bucket_for(shard, hash);
        e->chain = *at;
        *at = e;
        push_newest_locked(shard, e);
        shard->bytes += size;
        shard->count++;
        e = NULL;
    }
    pthread_mutex_unlock(&shard->lock);
    if (e) OPENSSL_clear_free(e, size);
    return 0; // the cache keeps its own copy, not a reference to `session`
}

static SSL_SESSION *session_get(SSL *ssl, const unsigned char *id, int len, int *copy) {
    *copy = 0;
    if (len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH) return NULL;
    uint64_t hash = id_hash(id, (unsigned int)len);
    session_shard *shard = shard_for(hash);
    if (!may_look_up(ssl)) return NULL;
    long long now = cache_clock_seconds();
    unsigned char der[MAX_DER];
    size_t der_len = 0;
    pthread_mutex_lock(&shard->lock);
    session_entry **at = find_locked(shard, hash, id, (unsigned int)len);
    if (*at) {
        session_entry *e = *at;
        if (now >= e->expires || now < e->began) {
            remove_locked(shard, at);
        } else {
            der_len = e->der_len;
            memcpy(der, e->der, der_len);
            unlink_lru_locked(shard, e);
            push_newest_locked(shard, e);
        }
    }
    pthread_mutex_unlock(&shard->lock);
    if (der_len == 0) return NULL;
    const unsigned char *p = der;
    SSL_SESSION *session = d2i_SSL_SESSION(NULL, &p, (long)der_len);
    OPENSSL_cleanse(der, der_len);
    return session;
}

static void session_remove(SSL_CTX *ctx, SSL_SESSION *session) {
    (void)ctx;
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(session, &id_len);
    if (!id || id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH) return;
    uint64_t hash = id_hash(id, id_len);
    session_shard *shard = shard_for(hash);
    pthread_mutex_lock(&shard->lock);
    session_entry **at = find_locked(shard, hash, id, id_len);
    if (*at) remove_locked(shard, at);
    pthread_mutex_unlock(&shard->lock);
}

void tg_session_cache_clear(void) {
    pthread_once(&shards_once, init_shards);
    for (int i = 0; i < SHARDS; i++) {
        session_shard *shard = &shards[i];
        pthread_mutex_lock(&shard->lock);
        while (shard->oldest) remove_entry_locked(shard, shard->oldest);
        pthread_mutex_unlock(&shard->lock);
    }
    atomic_fetch_add(&cache_generation, 1);
}

void tg_session_cache_set_bytes(size_t bytes) {
    if (atomic_exchange(&cache_bytes, bytes) == bytes) return;
    pthread_once(&shards_once, init_shards);
    for (int i = 0; i < SHARDS; i++) {
        session_shard *shard = &shards[i];
        pthread_mutex_lock(&shard->lock);
        while (shard->oldest && shard->bytes > bytes / SHARDS) remove_entry_locked(shard, shard->oldest);
        pthread_mutex_unlock(&shard->lock);
    }
    atomic_fetch_add(&cache_generation, 1);
}

size_t tg_session_cache_bytes(void) { return atomic_load(&cache_bytes); }

size_t tg_session_cache_count(void) {
    pthread_once(&shards_once, init_shards);
    size_t count = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        count += shards[i].count;
        pthread_mutex_unlock(&shards[i].lock);
    }
    return count;
}

unsigned long tg_session_cache_generation(void) { return atomic_load(&cache_generation); }

void tg_session_cache_install(SSL_CTX *ctx) {
    // This cache only: OpenSSL's own per-context cache would be one per worker, and swept under its lock.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL | SSL_SESS_CACHE_NO_AUTO_CLEAR);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_sess_set_new_cb(ctx, session_new);
    SSL_CTX_sess_set_get_cb(ctx, session_get);
    SSL_CTX_sess_set_remove_cb(ctx, session_remove);
}
