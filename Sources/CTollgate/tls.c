// Per-worker TLS state: a library context of its own, and a certificate and key parsed from memory into it. The
// session cache every worker's context shares is in session_cache.c.
#define _GNU_SOURCE
#include "CTollgate.h"
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tg_tls_library {
    OSSL_LIB_CTX *libctx;
};

tg_tls_library *tg_tls_library_new(void) {
    tg_tls_library *lib = calloc(1, sizeof(*lib));
    if (!lib) return NULL;
    lib->libctx = OSSL_LIB_CTX_new();
    if (!lib->libctx) {
        tg_tls_library_free(lib);
        return NULL;
    }
    return lib;
}

OSSL_LIB_CTX *tg_tls_library_libctx(tg_tls_library *lib) { return lib->libctx; }

void tg_tls_library_free(tg_tls_library *lib) {
    if (!lib) return;
    OSSL_LIB_CTX_free(lib->libctx);
    free(lib);
}

SSL_CTX *tg_SSL_CTX_new_server(tg_tls_library *lib) {
    SSL_CTX *ctx = SSL_CTX_new_ex(lib->libctx, NULL, TLS_server_method());
    if (!ctx) return NULL;
    SSL_CTX_set_app_data(ctx, lib);
    tg_session_cache_install(ctx);
    return ctx;
}

// ---------------------------------------------------------------------------------------------- certificate and key

// OpenSSL asks on every handshake whether TLS 1.3 is possible with the configured certificate (is_tls13_capable,
// from ssl_choose_server_version): for an EC key that means looking its curve up by name through the provider,
// about 3,700 instructions each time. With a certificate callback set, it answers yes at once (the callback could
// still install a certificate), as it does for nginx, which sets one. This callback changes nothing; it is set only
// for keys TLS 1.3 can sign with, for which the answer is yes anyway.
static int keep_certificate(SSL *ssl, void *arg) {
    (void)ssl;
    (void)arg;
    return 1;
}

// Whether TLS 1.3 can sign with `pkey`: RSA, RSA-PSS, Ed25519, Ed448, or EC on P-256, P-384 or P-521 (RFC 8446
// 4.2.3; the curve of an EC certificate must match its signature scheme).
static int tls13_can_sign_with(EVP_PKEY *pkey) {
    if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS") || EVP_PKEY_is_a(pkey, "ED25519")
        || EVP_PKEY_is_a(pkey, "ED448")) {
        return 1;
    }
    if (!EVP_PKEY_is_a(pkey, "EC")) return 0;
    char group[64];
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1) return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 || strcmp(group, "secp384r1") == 0
        || strcmp(group, "P-384") == 0 || strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0;
}

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
    if (!pkey) goto done;
    // A key that parsed but is not the certificate's: SSL_CTX_use_PrivateKey refuses it when it is of the
    // certificate's type, SSL_CTX_check_private_key when it is not.
    rc = TG_PEM_MISMATCH;
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) goto done;
    if (SSL_CTX_check_private_key(ctx) != 1) goto done;
    // Sessions are bound to this certificate: OpenSSL resumes a session only in the context (SHA-256 of the leaf)
    // it was made in, so after a certificate change no worker resumes one authenticated with the old certificate,
    // even while another worker is still serving it.
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    rc = TG_PEM_CERTIFICATE;
    if (X509_digest(leaf, EVP_sha256(), digest, &digest_len) != 1 || digest_len > SSL_MAX_SID_CTX_LENGTH) goto done;
    if (SSL_CTX_set_session_id_context(ctx, digest, digest_len) != 1) goto done;
    SSL_CTX_set_cert_cb(ctx, tls13_can_sign_with(pkey) ? keep_certificate : NULL, NULL);
    ERR_clear_error();
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
