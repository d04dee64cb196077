#ifndef CTOLLGATE_H
#define CTOLLGATE_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <pthread.h>
#include <crypt.h>
#include <openssl/ssl.h>

/// accept4 and getrandom need _GNU_SOURCE, which Swift's Glibc module does not define.
int tg_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
long tg_getrandom(void *buf, size_t len);
/// Names the calling thread (15 characters at most), for top -H, perf and /proc/PID/task/*/comm.
void tg_set_thread_name(const char *name);
/// Names another thread (set by its creator, so the name is there before the thread first runs).
void tg_name_thread(pthread_t thread, const char *name);
/// Returns freed heap memory to the kernel (glibc malloc_trim).
int tg_malloc_trim(void);

// One-line wrappers for OpenSSL function-like macros and constants Swift cannot import.
long tg_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
long tg_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes);
long tg_SSL_CTX_set_options(SSL_CTX *ctx, unsigned long long op);
int tg_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int tg_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
long tg_SSL_CTX_get_ex_cert_chain_count(SSL_CTX *ctx);

extern const long TG_SSL_MODE_RELEASE_BUFFERS;
extern const long TG_SSL_MODE_ENABLE_PARTIAL_WRITE;
extern const long TG_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
extern const unsigned long long TG_SSL_OP_NO_RENEGOTIATION;
extern const unsigned long long TG_SSL_OP_NO_COMPRESSION;
extern const unsigned long long TG_SSL_OP_NO_TLSv1;
extern const unsigned long long TG_SSL_OP_NO_TLSv1_1;
extern const unsigned long long TG_SSL_OP_CIPHER_SERVER_PREFERENCE;
/// A peer that closes without close_notify reads as an end of stream, not an error on OpenSSL's error queue.
extern const unsigned long long TG_SSL_OP_IGNORE_UNEXPECTED_EOF;
/// The configured chain is sent as it is; no chain is built from the store for every handshake.
extern const long TG_SSL_MODE_NO_AUTO_CHAIN;
/// Marks a connection as shut down both ways without sending anything, so `SSL_free` does not take the context's
/// session lock to remove a session from a cache (nginx's ngx_ssl_shutdown does the same on an abortive close).
void tg_SSL_forget_quietly(SSL *ssl);
extern const int TG_TLS1_2_VERSION;

/// SSL_set_tlsext_host_name (a macro): the SNI a client session sends.
long tg_SSL_set_tlsext_host_name(SSL *ssl, const char *name);

/// Installs an ALPN callback that selects "http/1.1" and declines anything else (h2 included); a handshake that
/// the TLS-ALPN-01 client-hello callback (acme.c, installed only with ACME on) marked selects "acme-tls/1" instead.
void tg_SSL_CTX_enable_alpn_http11(SSL_CTX *ctx);

/// The negotiated protocol version name ("TLSv1.3") for logs and tests.
const char *tg_SSL_get_version(const SSL *ssl);

/// A worker's own OpenSSL library context: workers share no lock or cache line inside OpenSSL, as nginx's worker
/// processes share none. Outlives every context made in it.
typedef struct tg_tls_library tg_tls_library;
tg_tls_library *tg_tls_library_new(void);
void tg_tls_library_free(tg_tls_library *lib);
/// The library context itself (acme.c parses challenge certificates into it).
OSSL_LIB_CTX *tg_tls_library_libctx(tg_tls_library *lib);
/// A server SSL_CTX in lib that resumes sessions (TLS 1.2 IDs, TLS 1.3 stateful tickets) from the process's one
/// session cache.
SSL_CTX *tg_SSL_CTX_new_server(tg_tls_library *lib);
/// Makes `ctx` resume from the process's session cache (TLS 1.2 session IDs, TLS 1.3 stateful tickets; tickets off).
void tg_session_cache_install(SSL_CTX *ctx);
/// The cache's size until it is set: 10 MB, as nginx's `ssl_session_cache shared:SSL:10m`.
extern const size_t TG_SESSION_CACHE_DEFAULT_BYTES;
/// Empties the session cache: no session made before resumes (a certificate change).
void tg_session_cache_clear(void);
/// Sets the cache's size in bytes (sessions as DER plus their bookkeeping; 0: no resumption), dropping the least
/// recently used sessions that no longer fit. Nothing changes when the size is the same.
void tg_session_cache_set_bytes(size_t bytes);
/// The cache's size in bytes.
size_t tg_session_cache_bytes(void);
/// Sessions in the cache now.
size_t tg_session_cache_count(void);
/// Moves whenever the cache is emptied or resized (tests).
unsigned long tg_session_cache_generation(void);
/// Moves the clock session ages are measured on (CLOCK_BOOTTIME seconds: monotonic, suspended time included)
/// forward (tests).
void tg_tls_clock_advance(long long seconds);

enum { TG_PEM_OK = 0, TG_PEM_CERTIFICATE = 1, TG_PEM_KEY = 2, TG_PEM_MISMATCH = 3 };
/// Installs a PEM certificate chain and private key held in memory, decoded in lib: TG_PEM_OK, or which part
/// failed (OpenSSL's error queue says why). Encrypted keys are refused, never prompted for.
int tg_SSL_CTX_use_pem(SSL_CTX *ctx, tg_tls_library *lib, const char *cert, size_t cert_len,
                       const char *key, size_t key_len);
/// The expiry (seconds since the epoch) of the first certificate in PEM text, or -1.
long long tg_certificate_not_after_pem(const char *cert, size_t cert_len);
/// The first certificate's notBefore in PEM cert (seconds since the epoch), or -1.
long long tg_certificate_not_before_pem(const char *cert, size_t cert_len);

/// Verifies the first certificate of PEM text against the others in it (as intermediates) and the trust store:
/// ca_file when given, else OpenSSL's default paths (the system's CA bundle), at time `at` (seconds since the
/// epoch). Returns X509_V_OK (0) or OpenSSL's verify error code (18: a self-signed leaf), -1 when the text holds
/// no certificate; err gets the reason, issuer the leaf's issuer as one line.
int tg_certificate_verify_chain_pem(const char *cert, size_t cert_len, const char *ca_file, long long at,
                                    char *err, size_t err_len, char *issuer, size_t issuer_len);

/// The kernel clock's state from adjtimex(2) asking nothing to change: 5 (TIME_ERROR) when the clock is not
/// synchronized, another state when it is, -1 when the call fails.
int tg_clock_state(void);

/// Generates a P-256 key and an X.509 certificate.
/// If ca_key_path/ca_cert_path are NULL the certificate is self-signed; is_ca marks it as a CA.
/// san is a comma-separated subjectAltName value ("DNS:localhost,IP:127.0.0.1"), may be NULL.
/// Writes PEM files (key with mode 0600). Returns 0 on success, -1 with a message in err.
int tg_generate_certificate(const char *key_path, const char *cert_path, const char *common_name,
                            const char *san, int is_ca, int days,
                            const char *ca_key_path, const char *ca_cert_path,
                            char *err, size_t err_len);

/// The expiry time (seconds since the epoch) of the first certificate in a PEM file, or -1.
long long tg_certificate_not_after(const char *cert_path);

/// Fills err with OpenSSL's error queue (oldest first) and clears it.
void tg_ssl_error_string(char *err, size_t err_len);

// ACME (RFC 8555) cryptography: acme.c. Keys are OpenSSL EVP_PKEYs the caller frees with EVP_PKEY_free.
/// A fresh P-256 key, or NULL.
EVP_PKEY *tg_p256_generate(void);
/// A P-256 private key from unencrypted PEM text (PKCS#8 or SEC1); NULL for anything else.
EVP_PKEY *tg_p256_from_pem(const char *pem, size_t len);
/// Writes the key as PKCS#8 PEM into out: its length, or -1 (also when cap is too small).
long tg_p256_to_pem(EVP_PKEY *key, char *out, size_t cap);
/// The public point's x and y, 32 bytes each (the JWK's "x" and "y"): 0, or -1.
int tg_p256_public_xy(EVP_PKEY *key, unsigned char out[64]);
/// ES256 (RFC 7518 3.4): SHA-256 then ECDSA, written as r||s, 32 bytes each: 0, or -1.
int tg_es256_sign(EVP_PKEY *key, const unsigned char *msg, size_t len, unsigned char out[64]);
/// 1 when sig (r||s) is key's ES256 signature of msg, else 0.
int tg_es256_verify(EVP_PKEY *key, const unsigned char *msg, size_t len, const unsigned char sig[64]);
/// A DER certificate signing request signed by key, subject CN common_name, with the subjectAltName extension san
/// ("DNS:a.example,DNS:b.example"): its length in out, or -1.
long tg_csr_der(EVP_PKEY *key, const char *common_name, const char *san, unsigned char *out, size_t cap);
/// The TLS-ALPN-01 certificate (RFC 8737) for domain, self-signed by key, valid for a week, with the critical
/// acmeIdentifier extension holding digest (SHA-256 of the key authorization), as PEM in out: its length, or -1.
long tg_acme_alpn_certificate_pem(EVP_PKEY *key, const char *domain, const unsigned char digest[32],
                                  char *out, size_t cap);

/// Starts answering TLS-ALPN-01 for domain with this certificate and key (PEM; replaces an earlier one for the same
/// domain) on every TLS context made with tg_SSL_CTX_enable_alpn_http11: 0, or -1 (64 pending already, no memory).
int tg_acme_tls_challenge_set(const char *domain, const char *cert, size_t cert_len, const char *key, size_t key_len);
/// Stops answering TLS-ALPN-01 for domain.
void tg_acme_tls_challenge_remove(const char *domain);
/// Installs the TLS-ALPN-01 client-hello callback on ctx (tg_SSL_CTX_enable_alpn_http11 does).
void tg_SSL_CTX_enable_acme_tls_alpn(SSL_CTX *ctx);
/// Whether this connection's handshake answered a TLS-ALPN-01 challenge: it must end once the handshake is done.
int tg_SSL_is_acme_challenge(const SSL *ssl);
/// The parts of a certificate's ACME Renewal Information identifier (RFC 9773 section 4.1), from the first
/// certificate in PEM: its Authority Key Identifier's keyIdentifier and its serial number's DER content octets.
/// 1 on success; 0 when the certificate cannot be read, has no AKI keyIdentifier, or a part exceeds its buffer.
/// 1 when the first certificate in PEM is valid for the DNS name `host` (its subjectAltName), else 0.
int tg_certificate_covers_host_pem(const char *pem, size_t pem_len, const char *host);
int tg_certificate_ari_parts(const char *pem, size_t pem_len, unsigned char *aki, size_t aki_cap, size_t *aki_len,
                             unsigned char *serial, size_t serial_cap, size_t *serial_len);
#endif
