/*
 * Standard Webhooks 1.0 signatures: webhook-signature is
 * "v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">",
 * one space-separated entry per configured secret so receivers can rotate
 * keys. Secrets are "whsec_" + base64 of the key bytes. OpenSSL libcrypto
 * does the HMAC and the base64; nothing here ever prints a secret.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "sinks_int.h"

#define WHSEC_PREFIX "whsec_"

vg_err_t sinks_sign_key_parse(struct sinks_sign_key *k, const char *secret, char *errstr,
                              size_t errstr_size)
{
    const char *b64;
    size_t len;
    size_t pad = 0;
    unsigned char *buf;
    int n;

    memset(k, 0, sizeof(*k));
    if (strncmp(secret, WHSEC_PREFIX, strlen(WHSEC_PREFIX)) != 0) {
        snprintf(errstr, errstr_size, "secret must start with \"whsec_\" (Standard Webhooks)");
        return VG_ERR_INVALID;
    }
    b64 = secret + strlen(WHSEC_PREFIX);
    len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > 4096) {
        snprintf(errstr, errstr_size, "secret: \"whsec_\" must be followed by base64");
        return VG_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        char c = b64[i];
        /* '=' only as the padding at the very end ("xx==", "xxx=") */
        bool pad_ok = c == '=' && i >= len - 2 && (i == len - 1 || b64[len - 1] == '=');
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || pad_ok;
        if (!ok) {
            snprintf(errstr, errstr_size, "secret: \"whsec_\" must be followed by base64");
            return VG_ERR_INVALID;
        }
    }
    pad = (b64[len - 1] == '=') + (b64[len - 2] == '=');
    buf = vg_malloc(len / 4 * 3 + 1);
    n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n < pad || (size_t)n - pad == 0) {
        vg_free(buf);
        snprintf(errstr, errstr_size, "secret: \"whsec_\" must be followed by base64");
        return VG_ERR_INVALID;
    }
    k->key = buf;
    k->len = (size_t)n - pad;
    return VG_OK;
}

void sinks_sign_key_fini(struct sinks_sign_key *k)
{
    if (k->key) {
        memset(k->key, 0, k->len);
    }
    vg_free(k->key);
    memset(k, 0, sizeof(*k));
}

char *sinks_sign_header(const struct sinks_sign_key *keys, size_t n_keys, const char *id,
                        int64_t ts, const char *body, size_t body_len)
{
    struct vg_buf msg = {0};
    struct vg_buf out = {0};

    vg_buf_printf(&msg, "%s.%lld.", id, (long long)ts);
    vg_buf_append(&msg, body, body_len);
    for (size_t i = 0; i < n_keys; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];

        if (!HMAC(EVP_sha256(), keys[i].key, (int)keys[i].len, (const unsigned char *)msg.data,
                  msg.len, mac, &mac_len)) {
            vg_oom("HMAC");
        }
        EVP_EncodeBlock(b64, mac, (int)mac_len);
        vg_buf_printf(&out, "%sv1,%s", i ? " " : "", (const char *)b64);
    }
    vg_buf_fini(&msg);
    return vg_buf_steal(&out);
}
