/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The local certificate authority and the TLS server side (GnuTLS).
 *
 * On first start the CA is generated in <state>/ca/: ca.crt (PEM), ca.key (PEM, 0600),
 * ECDSA P-256, CA:TRUE pathlen:0, keyCertSign|cRLSign, subject
 * "CN=locald development CA (<user>@<host>), O=locald" (the shim's trust-ca checks for
 * O=locald). Later starts load it; a damaged or mismatched pair is an error with a hint,
 * never silently replaced (users trusted it).
 *
 * Leaf certificates: one per host name (never a wildcard), ECDSA P-256, SAN dNSName =
 * that name, EKU serverAuth, valid from 1 hour ago for CA_LEAF_DAYS days; cached in
 * memory and on disk in <state>/ca/leaves/<host>.pem (cert + key, 0600); re-minted when
 * less than CA_LEAF_RENEW_DAYS remain or when it was not signed by the current CA.
 *
 * Thread safety: every function may be called from any thread (one mutex around the
 * cache; minting happens outside the lock where possible, first writer wins).
 */

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#define CA_LEAF_DAYS 398       /* Apple's limit for publicly trusted certs; < 825 */
#define CA_LEAF_RENEW_DAYS 30

typedef struct Ca Ca;

/*
 * Decides which names get their own leaf. Called with a lower-case SNI name; returns
 * true if the name is routed (or is a dashboard name). Unknown names get the leaf of
 * `fallback_host` (the dashboard, "locald.localhost").
 */
typedef bool (*CaHostFilter)(const char *host, void *userdata);

typedef struct CaOptions {
	const char *dir;           /* <state>/ca; created 0700 if missing */
	const char *fallback_host; /* default "locald.localhost" */
	CaHostFilter filter;       /* NULL = every syntactically valid name gets a leaf */
	void *filter_userdata;
} CaOptions;

int ca_open(const CaOptions *opts, Ca **ret);
/* ca_open() that also explains a failure in one line (which file, what is wrong, what
 * to do) in *ret_error (heap, the caller's), for the daemon to log. */
int ca_open_with_error(const CaOptions *opts, Ca **ret, char **ret_error);
Ca *ca_free(Ca *ca);

/* Paths of the CA certificate and key files (for `localctl trust`, tests: --cacert). */
const char *ca_cert_path(const Ca *ca);

/*
 * Credentials serving `host` (lower case, a valid DNS name, no trailing dot): from the
 * memory cache, else from disk, else minted now. The reference is the caller's:
 * ca_credentials_unref() it. Returns -EINVAL for a name that is not a valid host name.
 */
int ca_credentials_for(Ca *ca, const char *host, gnutls_certificate_credentials_t *ret);
void ca_credentials_unref(Ca *ca, gnutls_certificate_credentials_t cred);

/*
 * What the TLS layer serves for a client: `host` (lower case and valid, or NULL when the
 * client sent no usable SNI) gets its own leaf if the CaHostFilter accepts it, anything
 * else gets the fallback host's. Same reference rules as ca_credentials_for().
 */
int ca_credentials_select(Ca *ca, const char *host, gnutls_certificate_credentials_t *ret);

/* Lower-case LDH labels of 1..63 bytes, no leading/trailing '-', total <= 253, no
 * trailing dot. Such a name is safe as a file name (no '/', never "." or ".."). */
bool ca_host_name_valid(const char *host);

/* Counters for Stats/tests. */
typedef struct CaStats {
	unsigned long minted, loaded_from_disk, memory_hits;
	unsigned long save_errors; /* minted leaves that could not be written to disk */
} CaStats;
void ca_get_stats(Ca *ca, CaStats *ret);

/*
 * The TLS server side. One TlsServer per process: priorities (TLS 1.2 + 1.3, ECDHE,
 * AEAD ciphers), a session-ticket key (rotated by the process lifetime, in memory), ALPN
 * list {"h2", "http/1.1"} (h2 omitted when `enable_h2` is false).
 */
typedef struct TlsServer TlsServer;

int tls_server_new(Ca *ca, bool enable_h2, TlsServer **ret);
TlsServer *tls_server_free(TlsServer *t);

/*
 * A server-side session for one accepted connection, set up so that the certificate is
 * chosen by SNI during the handshake (gnutls_handshake_set_post_client_hello_function or
 * the certificate retrieve callback), ALPN is offered, and session tickets are on. The
 * caller sets the transport (gnutls_transport_set_int or push/pull functions) and drives
 * gnutls_handshake()/record_recv/record_send itself, non-blocking.
 */
int tls_session_new(TlsServer *t, gnutls_session_t *ret);

/* After the handshake: "h2", "http/1.1", or NULL if the client sent no ALPN. */
const char *tls_session_alpn(gnutls_session_t s);
/* After the handshake: the SNI host name, lower case, or NULL. Valid until the session
 * is deinitialized. */
const char *tls_session_sni(gnutls_session_t s);
