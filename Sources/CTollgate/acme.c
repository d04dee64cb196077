// The cryptography an ACME client needs (RFC 8555, RFC 8737): P-256 keys, ES256 signatures in the JWS form,
// certificate signing requests, and the TLS-ALPN-01 challenge certificate. Everything works on EVP_PKEY and writes
// into buffers the caller owns; nothing here keeps state between calls.
#define _GNU_SOURCE
#include "CTollgate.h"
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

EVP_PKEY *tg_p256_generate(void) {
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1) {
        if (EVP_PKEY_generate(ctx, &key) != 1) key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static int no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

// Only P-256 keys: the JWS algorithm (ES256) and the CSR's key type follow from it.
static int is_p256(EVP_PKEY *key) {
    char group[32] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) != 1) return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

EVP_PKEY *tg_p256_from_pem(const char *pem, size_t len) {
    BIO *in = BIO_new_mem_buf(pem, (int)len);
    if (!in) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(in, NULL, no_password, NULL);
    BIO_free(in);
    if (key && !is_p256(key)) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    ERR_clear_error();
    return key;
}

// Copies a memory BIO's contents to out; the length, or -1 when it does not fit.
static long copy_bio(BIO *bio, char *out, size_t cap) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0 || (size_t)n > cap) return -1;
    memcpy(out, data, (size_t)n);
    return n;
}

long tg_p256_to_pem(EVP_PKEY *key, char *out, size_t cap) {
    BIO *bio = BIO_new(BIO_s_mem());
    long n = -1;
    if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) n = copy_bio(bio, out, cap);
    BIO_free(bio);
    ERR_clear_error();
    return n;
}

int tg_p256_public_xy(EVP_PKEY *key, unsigned char out[64]) {
    BIGNUM *x = NULL, *y = NULL;
    int ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
             EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
             BN_bn2binpad(x, out, 32) == 32 && BN_bn2binpad(y, out + 32, 32) == 32;
    BN_free(x);
    BN_free(y);
    ERR_clear_error();
    return ok ? 0 : -1;
}

// RFC 7518 section 3.4: a JWS carries the ECDSA signature as r and s, each 32 bytes big-endian, not OpenSSL's
// DER SEQUENCE.
int tg_es256_sign(EVP_PKEY *key, const unsigned char *msg, size_t len, unsigned char out[64]) {
    int rc = -1;
    unsigned char der[80];
    size_t der_len = sizeof(der);
    ECDSA_SIG *sig = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1) goto done;
    if (EVP_DigestSign(ctx, der, &der_len, msg, len) != 1) goto done;
    const unsigned char *p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!sig) goto done;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32) goto done;
    rc = 0;
done:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int tg_es256_verify(EVP_PKEY *key, const unsigned char *msg, size_t len, const unsigned char sig[64]) {
    int ok = 0;
    unsigned char *der = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!es || !r || !s || !ctx || ECDSA_SIG_set0(es, r, s) != 1) goto done;
    r = s = NULL; // owned by es now
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0) goto done;
    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) != 1) goto done;
    ok = EVP_DigestVerify(ctx, der, (size_t)der_len, msg, len) == 1;
done:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

// A subjectAltName value ("DNS:a.example,DNS:b.example") as an extension; NULL on a malformed list.
static X509_EXTENSION *san_extension(X509 *issuer, X509 *subject, const char *san) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, subject, NULL, NULL, 0);
    return X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
}

long tg_csr_der(EVP_PKEY *key, const char *common_name, const char *san, unsigned char *out, size_t cap) {
    long rc = -1;
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    if (!req || !exts) goto done;
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1) goto done;
    X509_NAME *name = X509_REQ_get_subject_name(req);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0) != 1) goto done;
    if (X509_REQ_set_pubkey(req, key) != 1) goto done;
    ext = san_extension(NULL, NULL, san);
    if (!ext || !sk_X509_EXTENSION_push(exts, ext)) goto done;
    ext = NULL; // owned by exts
    if (X509_REQ_add_extensions(req, exts) != 1) goto done;
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) goto done;
    int n = i2d_X509_REQ(req, &der);
    if (n <= 0 || (size_t)n > cap) goto done;
    memcpy(out, der, (size_t)n);
    rc = n;
done:
    OPENSSL_free(der);
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}

// RFC 8737 section 3: a self-signed certificate for the one domain, carrying the critical acmeIdentifier extension
// (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31) whose value is the DER OCTET STRING of SHA-256(key authorization).
long tg_acme_alpn_certificate_pem(EVP_PKEY *key, const char *domain, const unsigned char digest[32],
                                  char *out, size_t cap) {
    long rc = -1;
    X509 *cert = X509_new();
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    BIO *bio = NULL;
    unsigned char inner[34];
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    char san[300];
    if (!cert || !oid || !value) goto done;
    if (snprintf(san, sizeof(san), "DNS:%s", domain) >= (int)sizeof(san)) goto done;
    if (X509_set_version(cert, X509_VERSION_3) != 1) goto done;
    if (RAND_bytes(serial, sizeof(serial)) != 1) goto done;
    serial[0] &= 0x7F;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert))) goto done;
    if (!X509_gmtime_adj(X509_getm_notBefore(cert), -3600)) goto done;
    if (!X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 86400)) goto done;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)domain, -1, -1, 0) != 1) goto done;
    if (X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1) goto done;
    ext = san_extension(cert, cert, san);
    if (!ext || X509_add_ext(cert, ext, -1) != 1) goto done;
    X509_EXTENSION_free(ext);
    inner[0] = 0x04; // OCTET STRING
    inner[1] = 32;
    memcpy(inner + 2, digest, 32);
    if (ASN1_OCTET_STRING_set(value, inner, sizeof(inner)) != 1) goto done;
    ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value);
    if (!ext || X509_add_ext(cert, ext, -1) != 1) goto done;
    if (X509_sign(cert, key, EVP_sha256()) <= 0) goto done;
    bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_X509(bio, cert) != 1) goto done;
    rc = copy_bio(bio, out, cap);
done:
    BIO_free(bio);
    BN_free(bn);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(value);
    ASN1_OBJECT_free(oid);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}

// ---------------------------------------------------------------------------------------------- TLS-ALPN-01
//
// The challenge certificates being validated, by domain, for the whole process: the ACME thread adds and removes
// them; every worker's TLS context reads them from its client-hello callback. A handshake that offers ALPN
// "acme-tls/1" with the SNI of a listed domain gets that certificate alone (parsed into the worker's own library
// context), "acme-tls/1" is selected, and the connection ends after the handshake (RFC 8737 section 3). Any other
// handshake costs one atomic load while no challenge is pending.

#define TG_ACME_CHALLENGES 64

typedef struct {
    char domain[256];
    char *cert;
    size_t cert_len;
    char *key;
    size_t key_len;
} acme_challenge;

static pthread_mutex_t challenge_lock = PTHREAD_MUTEX_INITIALIZER;
static acme_challenge challenges[TG_ACME_CHALLENGES]; // guarded by challenge_lock
static _Atomic int challenge_count;
static int challenge_index = -1;
static pthread_once_t challenge_index_once = PTHREAD_ONCE_INIT;

static void make_challenge_index(void) {
    challenge_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void clear_challenge(acme_challenge *c) {
    OPENSSL_clear_free(c->key, c->key_len);
    free(c->cert);
    memset(c, 0, sizeof(*c));
}

int tg_acme_tls_challenge_set(const char *domain, const char *cert, size_t cert_len, const char *key, size_t key_len) {
    if (strlen(domain) >= sizeof(challenges[0].domain)) return -1;
    pthread_once(&challenge_index_once, make_challenge_index);
    char *c = malloc(cert_len), *k = malloc(key_len);
    if (!c || !k) {
        free(c);
        free(k);
        return -1;
    }
    memcpy(c, cert, cert_len);
    memcpy(k, key, key_len);
    int rc = -1;
    pthread_mutex_lock(&challenge_lock);
    acme_challenge *slot = NULL;
    for (int i = 0; i < TG_ACME_CHALLENGES && !slot; i++) {
        if (challenges[i].cert && strcasecmp(challenges[i].domain, domain) == 0) slot = &challenges[i];
    }
    for (int i = 0; i < TG_ACME_CHALLENGES && !slot; i++) {
        if (!challenges[i].cert) {
            slot = &challenges[i];
            atomic_fetch_add(&challenge_count, 1);
        }
    }
    if (slot) {
        clear_challenge(slot);
        snprintf(slot->domain, sizeof(slot->domain), "%s", domain);
        slot->cert = c;
        slot->cert_len = cert_len;
        slot->key = k;
        slot->key_len = key_len;
        c = k = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&challenge_lock);
    free(c);
    OPENSSL_clear_free(k, key_len);
    return rc;
}

void tg_acme_tls_challenge_remove(const char *domain) {
    pthread_mutex_lock(&challenge_lock);
    for (int i = 0; i < TG_ACME_CHALLENGES; i++) {
        if (challenges[i].cert && strcasecmp(challenges[i].domain, domain) == 0) {
            clear_challenge(&challenges[i]);
            atomic_fetch_sub(&challenge_count, 1);
        }
    }
    pthread_mutex_unlock(&challenge_lock);
}

// Whether an ALPN protocol list (RFC 7301 wire form, with or without its 2-byte length) names "acme-tls/1".
static int offers_acme_tls(const unsigned char *list, size_t len) {
    static const char name[] = "acme-tls/1";
    size_t i = 0;
    while (i < len) {
        size_t n = list[i++];
        if (n > len - i) return 0;
        if (n == sizeof(name) - 1 && memcmp(list + i, name, n) == 0) return 1;
        i += n;
    }
    return 0;
}

// The host_name in a server_name extension (RFC 6066 section 3), NUL-terminated in out.
static int client_hello_sni(SSL *ssl, char *out, size_t cap) {
    const unsigned char *ext;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) || len < 5) return 0;
    size_t list = ((size_t)ext[0] << 8) | ext[1];
    if (list + 2 > len || ext[2] != TLSEXT_NAMETYPE_host_name) return 0;
    size_t n = ((size_t)ext[3] << 8) | ext[4];
    if (n + 5 > len || n == 0 || n >= cap || memchr(ext + 5, 0, n)) return 0;
    memcpy(out, ext + 5, n);
    out[n] = 0;
    return 1;
}

static int acme_client_hello(SSL *ssl, int *alert, void *arg) {
    (void)arg;
    (void)alert;
    if (atomic_load_explicit(&challenge_count, memory_order_relaxed) == 0) return SSL_CLIENT_HELLO_SUCCESS;
    const unsigned char *ext;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) || len < 2) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    if (!offers_acme_tls(ext + 2, len - 2)) return SSL_CLIENT_HELLO_SUCCESS;
    char domain[256];
    if (!client_hello_sni(ssl, domain, sizeof(domain))) return SSL_CLIENT_HELLO_SUCCESS;
    tg_tls_library *lib = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    OSSL_LIB_CTX *libctx = lib ? tg_tls_library_libctx(lib) : NULL;
    // The challenge's PEM is copied under the lock and parsed after it: a flood of such handshakes on every worker
    // waits on one another for a copy, not for a parse.
    char *pem_cert = NULL, *pem_key = NULL;
    size_t cert_len = 0, key_len = 0;
    pthread_mutex_lock(&challenge_lock);
    for (int i = 0; i < TG_ACME_CHALLENGES; i++) {
        acme_challenge *c = &challenges[i];
        if (!c->cert || strcasecmp(c->domain, domain) != 0) continue;
        pem_cert = malloc(c->cert_len);
        pem_key = malloc(c->key_len);
        if (pem_cert && pem_key) {
            memcpy(pem_cert, c->cert, c->cert_len);
            memcpy(pem_key, c->key, c->key_len);
            cert_len = c->cert_len;
            key_len = c->key_len;
        }
        break;
    }
    pthread_mutex_unlock(&challenge_lock);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    if (cert_len > 0 && key_len > 0) {
        BIO *in = BIO_new_mem_buf(pem_cert, (int)cert_len);
        cert = in ? X509_new_ex(libctx, NULL) : NULL;
        if (cert && !PEM_read_bio_X509(in, &cert, no_password, NULL)) {
            X509_free(cert);
            cert = NULL;
        }
        BIO_free(in);
        in = BIO_new_mem_buf(pem_key, (int)key_len);
        if (in) key = PEM_read_bio_PrivateKey_ex(in, NULL, no_password, NULL, libctx, NULL);
        BIO_free(in);
    }
    free(pem_cert);
    if (pem_key) OPENSSL_clear_free(pem_key, key_len);
    // The challenge pair replaces every certificate the connection holds: with an RSA certificate served beside it,
    // a validator preferring RSA signatures would be shown the served one and the validation would fail.
    if (cert && key) SSL_certs_clear(ssl);
    int ok = cert && key && SSL_use_certificate(ssl, cert) == 1 && SSL_use_PrivateKey(ssl, key) == 1 &&
             SSL_ctrl(ssl, SSL_CTRL_CHAIN, 0, NULL) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (ok) SSL_set_ex_data(ssl, challenge_index, (void *)1);
    // No challenge for that name: the handshake goes on with the served certificate, and without acme-tls/1 the
    // validation fails, as it should.
    return SSL_CLIENT_HELLO_SUCCESS;
}

void tg_SSL_CTX_enable_acme_tls_alpn(SSL_CTX *ctx) {
    pthread_once(&challenge_index_once, make_challenge_index);
    SSL_CTX_set_client_hello_cb(ctx, acme_client_hello, NULL);
}

int tg_SSL_is_acme_challenge(const SSL *ssl) {
    return challenge_index >= 0 && SSL_get_ex_data(ssl, challenge_index) != NULL;
}

int tg_certificate_ari_parts(const char *pem, size_t pem_len, unsigned char *aki, size_t aki_cap, size_t *aki_len,
                             unsigned char *serial, size_t serial_cap, size_t *serial_len) {
    BIO *in = BIO_new_mem_buf(pem, (int)pem_len);
    if (!in) return 0;
    X509 *x = PEM_read_bio_X509(in, NULL, no_password, NULL);
    BIO_free(in);
    if (!x) {
        ERR_clear_error();
        return 0;
    }
    int ok = 0;
    const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(x);
    const ASN1_INTEGER *number = X509_get0_serialNumber(x);
    unsigned char *der = NULL;
    int der_len = number ? i2d_ASN1_INTEGER(number, &der) : -1;
    if (kid && der_len > 2 && (size_t)ASN1_STRING_length(kid) <= aki_cap) {
        // The INTEGER's content octets: past its tag and its length (short form, or long form's count byte).
        size_t header = 2;
        if (der[1] & 0x80) header += der[1] & 0x7f;
        if ((size_t)der_len > header && (size_t)der_len - header <= serial_cap) {
            memcpy(aki, ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid));
            *aki_len = (size_t)ASN1_STRING_length(kid);
            memcpy(serial, der + header, (size_t)der_len - header);
            *serial_len = (size_t)der_len - header;
            ok = 1;
        }
    }
    OPENSSL_free(der);
    X509_free(x);
    ERR_clear_error();
    return ok;
}

int tg_certificate_covers_host_pem(const char *pem, size_t pem_len, const char *host) {
    BIO *in = BIO_new_mem_buf(pem, (int)pem_len);
    if (!in) return 0;
    X509 *x = PEM_read_bio_X509(in, NULL, no_password, NULL);
    BIO_free(in);
    int ok = x && X509_check_host(x, host, strlen(host), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
    X509_free(x);
    ERR_clear_error();
    return ok;
}
