// Per-worker TLS state: a library context of its own, session-ticket keys shared by every worker, and a
// certificate and key parsed from memory into that context.
#define _GNU_SOURCE
#include "CTollgate.h"
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tg_tls_library {
    OSSL_LIB_CTX *libctx;
    // Fetched once: OpenSSL 3 would otherwise look the ticket cipher up by name for every ticket.
    EVP_CIPHER *ticket_cipher;
};

tg_tls_library *tg_tls_library_new(void) {
    tg_tls_library *lib = calloc(1, sizeof(*lib));
    if (!lib) return NULL;
    lib->libctx = OSSL_LIB_CTX_new();
    if (lib->libctx) lib->ticket_cipher = EVP_CIPHER_fetch(lib->libctx, "AES-256-CBC", NULL);
    if (!lib->libctx || !lib->ticket_cipher) {
        tg_tls_library_free(lib);
        return NULL;
    }
    return lib;
}

OSSL_LIB_CTX *tg_tls_library_libctx(tg_tls_library *lib) { return lib->libctx; }

void tg_tls_library_free(tg_tls_library *lib) {
    if (!lib) return;
    EVP_CIPHER_free(lib->ticket_cipher);
    OSSL_LIB_CTX_free(lib->libctx);
    free(lib);
}

// ---------------------------------------------------------------------------------------------- ticket keys
//
// One set for the process, so a ticket issued by one worker (or by the context a certificate reload replaced)
// resumes on any other. Key 0 encrypts; key 1, the one it replaced, still decrypts for one more period. Every
// thread that handshakes keeps a copy and refreshes it only when the generation moves, so the handshake path
// takes no lock and writes no shared cache line.

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    long long created;
} ticket_key;

static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static ticket_key ticket_keys[2];              // guarded by ticket_lock
static int ticket_key_count;                   // guarded by ticket_lock
static _Atomic unsigned long ticket_generation;
static _Atomic long long ticket_next_rotation; // 0: no key yet
static _Atomic long long ticket_period = 7200;

static __thread unsigned long local_generation;
static __thread ticket_key local_keys[2];
static __thread int local_key_count;

static _Atomic long long clock_offset;         // tests move the clock forward instead of waiting hours
static const long long session_max_age = 86400;

static long long monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec + atomic_load_explicit(&clock_offset, memory_order_relaxed);
}

long long tg_tls_now(void) { return monotonic_seconds(); }
void tg_tls_clock_advance(long long seconds) { atomic_fetch_add(&clock_offset, seconds); }


static int fill_random(unsigned char *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        long n = tg_getrandom(buf + done, len - done);
        if (n <= 0) return 0;
        done += (size_t)n;
    }
    return 1;
}

static void rotate_locked(long long now) {
    ticket_key fresh;
    if (!fill_random(fresh.name, sizeof(fresh.name)) || !fill_random(fresh.aes, sizeof(fresh.aes)) ||
        !fill_random(fresh.hmac, sizeof(fresh.hmac))) {
        return; // keep the current key; the next handshake tries again
    }
    fresh.created = now;
    if (ticket_key_count > 0) ticket_keys[1] = ticket_keys[0];
    ticket_keys[0] = fresh;
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    if (ticket_key_count < 2) ticket_key_count++;
    atomic_store(&ticket_next_rotation, now + atomic_load(&ticket_period));
    atomic_fetch_add_explicit(&ticket_generation, 1, memory_order_release);
}

void tg_ticket_keys_rotate(long long now) {
    pthread_mutex_lock(&ticket_lock);
    rotate_locked(now);
    pthread_mutex_unlock(&ticket_lock);
}

void tg_ticket_keys_maybe_rotate(long long now) {
    long long next = atomic_load_explicit(&ticket_next_rotation, memory_order_relaxed);
    if (next != 0 && now < next) return;
    pthread_mutex_lock(&ticket_lock);
    next = atomic_load(&ticket_next_rotation);
    if (next == 0 || now >= next) rotate_locked(now);
    pthread_mutex_unlock(&ticket_lock);
}

void tg_ticket_keys_set_period(long long seconds) {
    if (seconds > 0) atomic_store(&ticket_period, seconds);
}

unsigned long tg_ticket_keys_generation(void) { return atomic_load(&ticket_generation); }

static void refresh_local_keys(void) {
    if (atomic_load_explicit(&ticket_generation, memory_order_acquire) == local_generation) return;
    pthread_mutex_lock(&ticket_lock);
    memcpy(local_keys, ticket_keys, sizeof(local_keys));
    local_key_count = ticket_key_count;
    local_generation = atomic_load(&ticket_generation);
    pthread_mutex_unlock(&ticket_lock);
}

static int set_ticket_mac(EVP_MAC_CTX *hctx, unsigned char *key) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

// SSL_CTX_set_tlsext_ticket_key_evp_cb(3): 1 = done, 2 = decrypted with an old key (issue a new ticket),
// 0 = no such key (a full handshake), -1 = failure.
static int ticket_key_callback(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                               EVP_MAC_CTX *hmac, int encrypt) {
    tg_tls_library *lib = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!lib) return -1;
    long long now = monotonic_seconds();
    if (encrypt) {
        tg_ticket_keys_maybe_rotate(now);
        refresh_local_keys();
        if (local_key_count == 0) return -1;
        ticket_key *key = &local_keys[0];
        if (RAND_bytes_ex(lib->libctx, iv, 16, 0) != 1) return -1;
        memcpy(key_name, key->name, 16);
        if (EVP_EncryptInit_ex(cipher, lib->ticket_cipher, NULL, key->aes, iv) != 1) return -1;
        return set_ticket_mac(hmac, key->hmac) == 1 ? 1 : -1;
    }
    refresh_local_keys();
    int found = -1;
    for (int i = 0; i < local_key_count; i++) {
        if (CRYPTO_memcmp(key_name, local_keys[i].name, 16) == 0) { found = i; break; }
    }
    if (found < 0) return 0;
    // The previous key's last tickets were issued when key 0 took over; they live one period more.
    if (found == 1 && now >= local_keys[0].created + atomic_load(&ticket_period)) return 0;
    ticket_key *key = &local_keys[found];
    if (set_ticket_mac(hmac, key->hmac) != 1) return -1;
    if (EVP_DecryptInit_ex(cipher, lib->ticket_cipher, NULL, key->aes, iv) != 1) return -1;
    // TLS 1.3 always gets a fresh ticket (2): clients that use each ticket once (RFC 8446 appendix C.4) would
    // otherwise fall back to a full handshake every other connection. TLS 1.2 renews only an old key's ticket.
    if (SSL_version(ssl) >= TLS1_3_VERSION) return 2;
    return found == 0 ? 1 : 2;
}

// ---------------------------------------------------------------------------------------------- session age
//
// A resumed TLS 1.3 session gets a fresh ticket, so a client resuming often enough could keep, indefinitely, a
// session whose only certificate check was its first handshake. Every ticket carries that handshake's time (in
// the ticket's application data, which OpenSSL copies into the session a resumption re-issues); a ticket whose
// session began more than `session_max_age` ago is not resumed, and the client does a full handshake (RFC 8446
// section 4.6.1: bound the total lifetime of a chain of resumptions).

static int ticket_generate(SSL *ssl, void *arg) {
    (void)arg;
    SSL_SESSION *session = SSL_get0_session(ssl);
    if (!session) return 0;
    void *data = NULL;
    size_t len = 0;
    if (SSL_SESSION_get0_ticket_appdata(session, &data, &len) == 1 && len == sizeof(long long)) return 1;
    long long began = monotonic_seconds();
    return SSL_SESSION_set1_ticket_appdata(session, &began, sizeof(began));
}

static SSL_TICKET_RETURN ticket_decrypted(SSL *ssl, SSL_SESSION *session, const unsigned char *key_name,
                                          size_t key_name_len, SSL_TICKET_STATUS status, void *arg) {
    (void)ssl; (void)key_name; (void)key_name_len; (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
        void *data = NULL;
        size_t len = 0;
        long long began;
        if (SSL_SESSION_get0_ticket_appdata(session, &data, &len) != 1 || len != sizeof(began) || !data) {
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        }
        memcpy(&began, data, sizeof(began));
        long long age = monotonic_seconds() - began;
        if (age < 0 || age >= session_max_age) return SSL_TICKET_RETURN_IGNORE_RENEW;
        return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_ABORT;
    }
}

SSL_CTX *tg_SSL_CTX_new_server(tg_tls_library *lib) {
    SSL_CTX *ctx = SSL_CTX_new_ex(lib->libctx, NULL, TLS_server_method());
    if (!ctx) return NULL;
    SSL_CTX_set_app_data(ctx, lib);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_callback);
    if (SSL_CTX_set_session_ticket_cb(ctx, ticket_generate, ticket_decrypted, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

// ---------------------------------------------------------------------------------------------- certificate and key

static int no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

int tg_SSL_CTX_use_pem(SSL_CTX *ctx, tg_tls_library *lib, const char *cert, size_t cert_len,
                       const char *key, size_t key_len) {
    int rc = TG_PEM_CERTIFICATE;
    BIO *in = BIO_new_mem_buf(cert, (int)cert_len);
    X509 *leaf = X509_new_ex(lib->libctx, NULL);
    EVP_PKEY *pkey = NULL;
    if (!in || !leaf) goto done;
    // As SSL_CTX_use_certificate_chain_file: the first certificate (trusted form allowed) is the leaf, the rest
    // the chain, each decoded in this library context.
    if (!PEM_read_bio_X509_AUX(in, &leaf, no_password, NULL)) goto done;
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) goto done;
    if (SSL_CTX_clear_chain_certs(ctx) != 1) goto done;
    for (;;) {
        X509 *ca = X509_new_ex(lib->libctx, NULL);
        if (!ca) goto done;
        if (!PEM_read_bio_X509(in, &ca, no_password, NULL)) {
            X509_free(ca);
            unsigned long err = ERR_peek_last_error();
            if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;
            }
            goto done;
        }
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            goto done;
        }
    }
    rc = TG_PEM_KEY;
    BIO_free(in);
    in = BIO_new_mem_buf(key, (int)key_len);
    if (!in) goto done;
    pkey = PEM_read_bio_PrivateKey_ex(in, NULL, no_password, NULL, lib->libctx, NULL);
    if (!pkey || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) goto done;
    rc = TG_PEM_MISMATCH;
    if (SSL_CTX_check_private_key(ctx) != 1) goto done;
    rc = TG_PEM_OK;
done:
    BIO_free(in);
    X509_free(leaf);
    EVP_PKEY_free(pkey);
    return rc;
}

// One of the first certificate's validity bounds (notBefore when `before`, else notAfter), seconds since the epoch,
// or -1.
static long long certificate_bound_pem(const char *cert, size_t cert_len, int before) {
    BIO *in = BIO_new_mem_buf(cert, (int)cert_len);
    if (!in) return -1;
    X509 *x = PEM_read_bio_X509(in, NULL, no_password, NULL);
    BIO_free(in);
    if (!x) {
        ERR_clear_error();
        return -1;
    }
    struct tm tm;
    long long result = -1;
    if (ASN1_TIME_to_tm(before ? X509_get0_notBefore(x) : X509_get0_notAfter(x), &tm) == 1) {
        result = (long long)timegm(&tm);
    }
    X509_free(x);
    return result;
}

long long tg_certificate_not_after_pem(const char *cert, size_t cert_len) {
    return certificate_bound_pem(cert, cert_len, 0);
}

long long tg_certificate_not_before_pem(const char *cert, size_t cert_len) {
    return certificate_bound_pem(cert, cert_len, 1);
}

int tg_certificate_verify_chain_pem(const char *cert, size_t cert_len, const char *ca_file, long long at,
                                    char *err, size_t err_len, char *issuer, size_t issuer_len) {
    if (err_len) err[0] = 0;
    if (issuer_len) issuer[0] = 0;
    BIO *in = BIO_new_mem_buf(cert, (int)cert_len);
    if (!in) return -1;
    X509 *leaf = PEM_read_bio_X509(in, NULL, no_password, NULL);
    if (!leaf) {
        BIO_free(in);
        ERR_clear_error();
        snprintf(err, err_len, "no PEM certificate in the file");
        return -1;
    }
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *x;
    while (chain && (x = PEM_read_bio_X509(in, NULL, no_password, NULL)) != NULL) {
        if (!sk_X509_push(chain, x)) X509_free(x);
    }
    BIO_free(in);
    ERR_clear_error();
    if (issuer_len) X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, (int)issuer_len);
    int code = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store && ctx) {
        int loaded = ca_file ? X509_STORE_load_file(store, ca_file) : X509_STORE_set_default_paths(store);
        if (loaded != 1) {
            snprintf(err, err_len, "cannot load the trust store %s", ca_file ? ca_file : "(system default)");
        } else if (X509_STORE_CTX_init(ctx, store, leaf, chain) == 1) {
            if (at > 0) X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)at);
            code = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
            if (code != X509_V_OK) snprintf(err, err_len, "%s", X509_verify_cert_error_string(code));
        }
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    ERR_clear_error();
    return code;
}
