#define _GNU_SOURCE
#include "CTollgate.h"
#include <sys/random.h>
#include <sys/timex.h>
#include <pthread.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>

int tg_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
long tg_getrandom(void *buf, size_t len) { return (long)getrandom(buf, len, 0); }
int tg_malloc_trim(void) { return malloc_trim(0); }
void tg_name_thread(pthread_t thread, const char *name) {
    char shortName[16];
    snprintf(shortName, sizeof(shortName), "%s", name);
    pthread_setname_np(thread, shortName);
}
void tg_set_thread_name(const char *name) {
    char shortName[16];
    snprintf(shortName, sizeof(shortName), "%s", name);
    pthread_setname_np(pthread_self(), shortName);
}

long tg_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
long tg_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) { return SSL_CTX_set_read_ahead(ctx, yes); }
long tg_SSL_CTX_set_options(SSL_CTX *ctx, unsigned long long op) { return (long)SSL_CTX_set_options(ctx, op); }
int tg_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
int tg_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
long tg_SSL_CTX_get_ex_cert_chain_count(SSL_CTX *ctx) {
    STACK_OF(X509) *chain = NULL;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1 || chain == NULL) return 0;
    return sk_X509_num(chain);
}

const long TG_SSL_MODE_RELEASE_BUFFERS = SSL_MODE_RELEASE_BUFFERS;
const long TG_SSL_MODE_ENABLE_PARTIAL_WRITE = SSL_MODE_ENABLE_PARTIAL_WRITE;
const long TG_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
const unsigned long long TG_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
const unsigned long long TG_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
const unsigned long long TG_SSL_OP_NO_TLSv1 = SSL_OP_NO_TLSv1;
const unsigned long long TG_SSL_OP_NO_TLSv1_1 = SSL_OP_NO_TLSv1_1;
const unsigned long long TG_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
const unsigned long long TG_SSL_OP_IGNORE_UNEXPECTED_EOF = SSL_OP_IGNORE_UNEXPECTED_EOF;
const long TG_SSL_MODE_NO_AUTO_CHAIN = SSL_MODE_NO_AUTO_CHAIN;

void tg_SSL_forget_quietly(SSL *ssl) {
    SSL_set_quiet_shutdown(ssl, 1);
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}
const int TG_TLS1_2_VERSION = TLS1_2_VERSION;

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    static const unsigned char acme_tls[] = "\x0a" "acme-tls/1";
    unsigned char *selected = NULL;
    // A TLS-ALPN-01 validation (acme.c's client-hello callback put the challenge certificate in): acme-tls/1 only.
    if (tg_SSL_is_acme_challenge(ssl)) {
        if (SSL_select_next_proto(&selected, outlen, acme_tls, sizeof(acme_tls) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
            *out = selected;
            return SSL_TLSEXT_ERR_OK;
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof(http11) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    // A client that offers only other protocols (h2 alone) is still served HTTP/1.1 without ALPN.
    return SSL_TLSEXT_ERR_NOACK;
}

void tg_SSL_CTX_enable_alpn_http11(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL); }

long tg_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }

const char *tg_SSL_get_version(const SSL *ssl) { return SSL_get_version(ssl); }

void tg_ssl_error_string(char *err, size_t err_len) {
    if (err_len == 0) return;
    err[0] = 0;
    unsigned long e;
    size_t used = 0;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        int n = snprintf(err + used, err_len - used, "%s%s", used ? "; " : "", buf);
        if (n < 0 || (size_t)n >= err_len - used) break;
        used += (size_t)n;
    }
}

static int fail(char *err, size_t err_len, const char *what) {
    char ssl[512];
    tg_ssl_error_string(ssl, sizeof(ssl));
    snprintf(err, err_len, "%s%s%s", what, ssl[0] ? ": " : "", ssl);
    return -1;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex) return 0;
    int ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

int tg_generate_certificate(const char *key_path, const char *cert_path, const char *common_name,
                            const char *san, int is_ca, int days,
                            const char *ca_key_path, const char *ca_cert_path,
                            char *err, size_t err_len) {
    int rc = -1;
    EVP_PKEY *key = NULL, *ca_key = NULL;
    X509 *cert = NULL, *ca_cert = NULL;
    FILE *f = NULL;

    key = EVP_EC_gen("P-256");
    if (!key) { fail(err, err_len, "generating a P-256 key"); goto done; }

    if (ca_key_path && ca_cert_path) {
        f = fopen(ca_key_path, "r");
        if (!f) { snprintf(err, err_len, "cannot open CA key %s", ca_key_path); goto done; }
        ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f); f = NULL;
        if (!ca_key) { fail(err, err_len, "reading CA key"); goto done; }
        f = fopen(ca_cert_path, "r");
        if (!f) { snprintf(err, err_len, "cannot open CA certificate %s", ca_cert_path); goto done; }
        ca_cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f); f = NULL;
        if (!ca_cert) { fail(err, err_len, "reading CA certificate"); goto done; }
    }

    cert = X509_new();
    if (!cert) { fail(err, err_len, "allocating a certificate"); goto done; }
    X509_set_version(cert, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400L);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Tollgate development", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)common_name, -1, -1, 0);
    X509 *issuer = ca_cert ? ca_cert : cert;
    X509_set_issuer_name(cert, X509_get_subject_name(issuer));

    if (is_ca) {
        if (!add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") ||
            !add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign")) {
            fail(err, err_len, "adding CA extensions"); goto done;
        }
    } else {
        if (!add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
            !add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature") ||
            !add_ext(cert, issuer, NID_ext_key_usage, "serverAuth")) {
            fail(err, err_len, "adding leaf extensions"); goto done;
        }
    }
    if (!add_ext(cert, issuer, NID_subject_key_identifier, "hash")) { fail(err, err_len, "adding key id"); goto done; }
    /* After the subject key identifier: a self-signed certificate's authority key identifier is its own. */
    if (!add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always")) {
        fail(err, err_len, "adding authority key id"); goto done;
    }
    if (san && san[0] && !add_ext(cert, issuer, NID_subject_alt_name, san)) {
        fail(err, err_len, "adding subjectAltName"); goto done;
    }
    if (!X509_sign(cert, ca_key ? ca_key : key, EVP_sha256())) { fail(err, err_len, "signing"); goto done; }

    int fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { snprintf(err, err_len, "cannot create %s", key_path); goto done; }
    f = fdopen(fd, "w");
    if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) {
        if (!f) close(fd);
        fail(err, err_len, "writing key"); goto done;
    }
    fclose(f); f = NULL;
    f = fopen(cert_path, "w");
    if (!f || !PEM_write_X509(f, cert)) { fail(err, err_len, "writing certificate"); goto done; }
    fclose(f); f = NULL;
    rc = 0;
done:
    if (f) fclose(f);
    X509_free(cert);
    X509_free(ca_cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rc;
}

long long tg_certificate_not_after(const char *cert_path) {
    FILE *f = fopen(cert_path, "r");
    if (!f) return -1;
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) return -1;
    struct tm tm;
    long long result = -1;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) result = (long long)timegm(&tm);
    X509_free(cert);
    return result;
}

int tg_clock_state(void) {
    struct timex t;
    memset(&t, 0, sizeof t);
    return adjtimex(&t);
}
