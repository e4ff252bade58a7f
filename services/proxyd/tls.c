/* SPDX-License-Identifier: MIT */
#include "ca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "strutil.h"

/*
 * TLS 1.2 and 1.3 only; ECDHE key exchange with our ECDSA leaves; AEAD ciphers only;
 * X25519, P-256 and P-384 for the key share. Every choice left is strong, so the
 * client's order decides: with %SERVER_PRECEDENCE GnuTLS picks the group by our order
 * and sends a HelloRetryRequest (a whole extra round trip per new connection) to any
 * client whose one key share is for another group; and clients without AES instructions
 * know to prefer ChaCha20.
 */
#define TLS_PRIORITY                                                                               \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"                                              \
	"-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"                                \
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:"                                                     \
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1"

/*
 * Per-session state needs to live exactly as long as the gnutls_session_t, but the
 * contract lets the caller end a session with a plain gnutls_deinit(), and GnuTLS has no
 * deinit hook for application pointers. Extension private data does get one: so each
 * session registers a private extension (a codepoint from the private-use range; it is
 * never sent, and anything a client sends under it is ignored) whose data is this
 * context, released by GnuTLS in gnutls_deinit(). That is also where the reference to
 * the per-host credentials is dropped, so a leaf renewed mid-connection stays alive for
 * the sessions still using it.
 */
#define TLS_CTX_EXT_ID 0xFFA7

typedef struct TlsSessionCtx {
	Ca *ca;
	gnutls_certificate_credentials_t cred; /* our reference, NULL before ClientHello */
	char sni[254];                         /* lower case; "" when absent or invalid */
} TlsSessionCtx;

struct TlsServer {
	Ca *ca;
	gnutls_priority_t priority;
	gnutls_datum_t ticket_key;
	gnutls_datum_t alpn[2];
	unsigned n_alpn;
};

static void ctx_free(gnutls_ext_priv_data_t data)
{
	TlsSessionCtx *ctx = data;
	if (!ctx)
		return;
	ca_credentials_unref(ctx->ca, ctx->cred);
	free(ctx);
}

static int ext_recv_ignore(gnutls_session_t s, const unsigned char *data, size_t len)
{
	return 0;
}

static int ext_send_nothing(gnutls_session_t s, gnutls_buffer_t extdata)
{
	return 0;
}

static TlsSessionCtx *session_ctx(gnutls_session_t s)
{
	gnutls_ext_priv_data_t p = NULL;
	if (gnutls_ext_get_data(s, TLS_CTX_EXT_ID, &p) < 0)
		return NULL;
	return p;
}

/* The SNI name as a valid lower-case host name (DNS names compare case-insensitively,
 * and a trailing dot names the same host), else "". */
static void sni_normalize(gnutls_session_t s, char *out, size_t size)
{
	char name[256];
	size_t len = sizeof name - 1;
	unsigned type = 0;
	out[0] = 0;
	if (gnutls_server_name_get(s, name, &len, &type, 0) < 0 || type != GNUTLS_NAME_DNS)
		return;
	name[MIN(len, sizeof name - 1)] = 0;
	if (len > 0 && name[len - 1] == '.')
		name[--len] = 0;
	for (char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (strlen(name) == len && ca_host_name_valid(name))
		(void)strscpy(out, size, name);
}

/*
 * Certificate selection: after the ClientHello is parsed (SNI known) and before the
 * cipher suite is chosen, point the session at the host's prebuilt credentials. We use
 * this rather than a retrieve callback on one process-wide credentials object because
 * the per-host object already holds the parsed certificate and key (nothing is converted
 * per handshake), setting it is one pointer store, and the session's reference keeps
 * exactly the leaf it negotiated with alive. Runs again after a HelloRetryRequest.
 */
static int post_client_hello(gnutls_session_t s)
{
	TlsSessionCtx *ctx = session_ctx(s);
	if (!ctx)
		return GNUTLS_E_INTERNAL_ERROR;
	sni_normalize(s, ctx->sni, sizeof ctx->sni);

	gnutls_certificate_credentials_t cred;
	if (ca_credentials_select(ctx->ca, ctx->sni[0] ? ctx->sni : NULL, &cred) < 0)
		return GNUTLS_E_CERTIFICATE_ERROR;
	int r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	if (r < 0) {
		ca_credentials_unref(ctx->ca, cred);
		return r;
	}
	ca_credentials_unref(ctx->ca, ctx->cred);
	ctx->cred = cred;
	return 0;
}

TlsServer *tls_server_free(TlsServer *t)
{
	if (!t)
		return NULL;
	if (t->priority)
		gnutls_priority_deinit(t->priority);
	if (t->ticket_key.data) {
		gnutls_memset(t->ticket_key.data, 0, t->ticket_key.size);
		gnutls_free(t->ticket_key.data);
	}
	free(t);
	return NULL;
}

static inline void tls_server_freep(TlsServer **p)
{
	tls_server_free(*p);
}

int tls_server_new(Ca *ca, bool enable_h2, TlsServer **ret)
{
	if (!ca || !ret)
		return -EINVAL;
	_cleanup_(tls_server_freep) TlsServer *t = calloc(1, sizeof(TlsServer));
	if (!t)
		return -ENOMEM;
	t->ca = ca;
	int r = gnutls_priority_init(&t->priority, TLS_PRIORITY, NULL);
	if (r < 0)
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
	/* One key per process: tickets survive as long as the process (GnuTLS derives
	 * rotating keys from it), never touch the disk. */
	r = gnutls_session_ticket_key_generate(&t->ticket_key);
	if (r < 0)
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
	if (enable_h2)
		t->alpn[t->n_alpn++] = (gnutls_datum_t){ (unsigned char *)"h2", 2 };
	t->alpn[t->n_alpn++] = (gnutls_datum_t){ (unsigned char *)"http/1.1", 8 };

	/* Have the fallback leaf ready (and any CA problem surface) before the first
	 * client arrives. */
	gnutls_certificate_credentials_t cred;
	r = ca_credentials_select(ca, NULL, &cred);
	if (r < 0)
		return r;
	ca_credentials_unref(ca, cred);

	*ret = TAKE_PTR(t);
	return 0;
}

int tls_session_new(TlsServer *t, gnutls_session_t *ret)
{
	if (!t || !ret)
		return -EINVAL;
	gnutls_session_t s = NULL;
	int r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (r < 0)
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;

	TlsSessionCtx *ctx = calloc(1, sizeof(TlsSessionCtx));
	if (!ctx) {
		gnutls_deinit(s);
		return -ENOMEM;
	}
	ctx->ca = t->ca;
	r = gnutls_session_ext_register(s, "locald-session", TLS_CTX_EXT_ID, GNUTLS_EXT_TLS,
					ext_recv_ignore, ext_send_nothing, ctx_free, NULL, NULL,
					GNUTLS_EXT_FLAG_CLIENT_HELLO | GNUTLS_EXT_FLAG_TLS);
	if (r < 0) {
		free(ctx);
		gnutls_deinit(s);
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
	}
	gnutls_ext_set_data(s, TLS_CTX_EXT_ID, ctx);
	if (session_ctx(s) != ctx) {
		free(ctx);
		gnutls_deinit(s);
		return -EIO;
	}
	/* The session owns ctx from here. */

	if ((r = gnutls_priority_set(s, t->priority)) < 0 ||
	    (r = gnutls_alpn_set_protocols(s, t->alpn, t->n_alpn, GNUTLS_ALPN_SERVER_PRECEDENCE)) <
		0 ||
	    (r = gnutls_session_ticket_enable_server(s, &t->ticket_key)) < 0) {
		gnutls_deinit(s);
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
	}
	gnutls_handshake_set_post_client_hello_function(s, post_client_hello);
	*ret = s;
	return 0;
}

const char *tls_session_alpn(gnutls_session_t s)
{
	gnutls_datum_t p;
	if (!s || gnutls_alpn_get_selected_protocol(s, &p) < 0)
		return NULL;
	if (p.size == 2 && memcmp(p.data, "h2", 2) == 0)
		return "h2";
	if (p.size == 8 && memcmp(p.data, "http/1.1", 8) == 0)
		return "http/1.1";
	return NULL;
}

const char *tls_session_sni(gnutls_session_t s)
{
	TlsSessionCtx *ctx = s ? session_ctx(s) : NULL;
	return ctx && ctx->sni[0] ? ctx->sni : NULL;
}
