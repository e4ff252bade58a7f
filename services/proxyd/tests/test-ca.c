/* SPDX-License-Identifier: MIT */
/*
 * The local CA and the TLS server side, with real handshakes: a GnuTLS client in this
 * thread talks over a socketpair to tls_session_new() sessions driven by a server thread.
 */
#include <dirent.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "strutil.h"
#include "test.h"

#define DAY (24 * 3600)

static char *dir_in_tmp(const char *name)
{
	char *p = strdupf("%s/%s", test_tmpdir(), name);
	ASSERT_NOT_NULL(p);
	return p;
}

static Ca *open_ca(const char *dir, CaHostFilter filter)
{
	CaOptions o = { .dir = dir, .filter = filter };
	Ca *ca = NULL;
	_cleanup_free_ char *error = NULL;
	int r = ca_open_with_error(&o, &ca, &error);
	if (r < 0)
		fprintf(stderr, "ca_open: %s\n", error ? error : strerror(-r));
	ASSERT_OK(r);
	return ca;
}

static gnutls_x509_crt_t load_crt(const char *path)
{
	gnutls_datum_t d;
	gnutls_x509_crt_t crt;
	ASSERT_EQ(gnutls_load_file(path, &d), 0);
	ASSERT_EQ(gnutls_x509_crt_init(&crt), 0);
	ASSERT_EQ(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	gnutls_free(d.data);
	return crt;
}

static void fingerprint(const char *path, char out[65])
{
	gnutls_x509_crt_t crt = load_crt(path);
	uint8_t fp[32];
	size_t n = sizeof fp;
	ASSERT_EQ(gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &n), 0);
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", fp[i]);
	gnutls_x509_crt_deinit(crt);
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	ASSERT_EQ(lstat(path, &st), 0);
	return st.st_mode;
}

static char *leaf_path(const char *dir, const char *host)
{
	char *p = strdupf("%s/leaves/%s.pem", dir, host);
	ASSERT_NOT_NULL(p);
	return p;
}

/* ---- a TLS client against a server thread ---- */

typedef struct Server {
	TlsServer *tls;
	int fd;
	int handshake;
	char sni[256], alpn[16];
	bool has_sni, has_alpn;
} Server;

static void *server_run(void *userdata)
{
	Server *sv = userdata;
	gnutls_session_t s;
	ASSERT_OK(tls_session_new(sv->tls, &s));
	gnutls_transport_set_int(s, sv->fd);
	int r;
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	sv->handshake = r;
	if (r >= 0) {
		const char *sni = tls_session_sni(s), *alpn = tls_session_alpn(s);
		if ((sv->has_sni = sni))
			strscpy(sv->sni, sizeof sv->sni, sni);
		if ((sv->has_alpn = alpn))
			strscpy(sv->alpn, sizeof sv->alpn, alpn);
		/* One byte, so the client reads past the TLS 1.3 tickets that precede it. */
		(void)gnutls_record_send(s, "x", 1);
		(void)gnutls_bye(s, GNUTLS_SHUT_WR);
	}
	gnutls_deinit(s);
	close(sv->fd);
	return NULL;
}

typedef struct ClientOptions {
	const char *sni;
	const char *priority; /* default "NORMAL" */
	const char *alpn[2];
	const gnutls_datum_t *resume;
} ClientOptions;

typedef struct Client {
	int handshake;
	Server server;
	const char *ca_file;
	gnutls_protocol_t version;
	bool resumed;
	unsigned hello_retries; /* HelloRetryRequests received: each costs a round trip */
	char alpn[16];
	gnutls_x509_crt_t peer;
	gnutls_datum_t session_data;
	unsigned verify_right, verify_wrong; /* verify_peers3 with sni / with "wrong.localhost" */
} Client;

static void client_done(Client *c)
{
	if (c->peer)
		gnutls_x509_crt_deinit(c->peer);
	gnutls_free(c->session_data.data);
}

static int count_hrr(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
		     const gnutls_datum_t *msg)
{
	Client *c = gnutls_session_get_ptr(s);
	c->hello_retries++;
	return 0;
}

static void handshake(TlsServer *tls, const char *ca_file, const ClientOptions *o, Client *c)
{
	int sp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	*c = (Client){ .ca_file = ca_file };
	c->server = (Server){ .tls = tls, .fd = sp[1] };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, server_run, &c->server), 0);

	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	ASSERT_EQ(gnutls_certificate_allocate_credentials(&cred), 0);
	ASSERT_EQ(gnutls_certificate_set_x509_trust_file(cred, ca_file, GNUTLS_X509_FMT_PEM), 1);
	/* One key share, like most clients: the server must not need another. */
	ASSERT_EQ(gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_KEY_SHARE_TOP), 0);
	ASSERT_EQ(gnutls_priority_set_direct(s, o->priority ? o->priority : "NORMAL", NULL), 0);
	ASSERT_EQ(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), 0);
	if (o->sni)
		ASSERT_EQ(gnutls_server_name_set(s, GNUTLS_NAME_DNS, o->sni, strlen(o->sni)), 0);
	gnutls_datum_t alpn[2];
	unsigned n_alpn = 0;
	for (unsigned i = 0; i < 2 && o->alpn[i]; i++)
		alpn[n_alpn++] =
		    (gnutls_datum_t){ (unsigned char *)o->alpn[i], (unsigned)strlen(o->alpn[i]) };
	if (n_alpn)
		ASSERT_EQ(gnutls_alpn_set_protocols(s, alpn, n_alpn, 0), 0);
	if (o->resume)
		ASSERT_EQ(gnutls_session_set_data(s, o->resume->data, o->resume->size), 0);
	gnutls_transport_set_int(s, sp[0]);
	gnutls_session_set_ptr(s, c);
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST,
					   GNUTLS_HOOK_POST, count_hrr);

	int r;
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	c->handshake = r;
	if (r >= 0) {
		c->version = gnutls_protocol_get_version(s);
		c->resumed = gnutls_session_is_resumed(s);
		gnutls_datum_t p;
		if (gnutls_alpn_get_selected_protocol(s, &p) == 0)
			snprintf(c->alpn, sizeof c->alpn, "%.*s", (int)p.size, p.data);
		unsigned n = 0;
		const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
		if (chain && n > 0) {
			ASSERT_EQ(gnutls_x509_crt_init(&c->peer), 0);
			ASSERT_EQ(gnutls_x509_crt_import(c->peer, &chain[0], GNUTLS_X509_FMT_DER),
				  0);
		}
		if (!c->resumed) {
			ASSERT_EQ(gnutls_certificate_verify_peers3(
				      s, o->sni ? o->sni : "locald.localhost", &c->verify_right),
				  0);
			ASSERT_EQ(gnutls_certificate_verify_peers3(s, "wrong.localhost",
								   &c->verify_wrong),
				  0);
		}
		char byte;
		do
			r = (int)gnutls_record_recv(s, &byte, 1);
		while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
		ASSERT_EQ(r, 1);
		ASSERT_EQ(gnutls_session_get_data2(s, &c->session_data), 0);
	}
	gnutls_deinit(s);
	close(sp[0]);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	gnutls_certificate_free_credentials(cred);
}

static bool crt_has_dns_name(gnutls_x509_crt_t crt, const char *name)
{
	for (unsigned i = 0;; i++) {
		char buf[256];
		size_t n = sizeof buf;
		int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &n, NULL);
		if (t < 0)
			return false;
		if (t == GNUTLS_SAN_DNSNAME && streq(buf, name))
			return true;
	}
}

static unsigned crt_san_count(gnutls_x509_crt_t crt)
{
	unsigned i = 0;
	for (;; i++) {
		char buf[256];
		size_t n = sizeof buf;
		if (gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &n, NULL) < 0)
			return i;
	}
}

/* A fixture: CA in <tmp>/ca, a TlsServer, the CA file. */
typedef struct Fixture {
	char *dir, *ca_file;
	Ca *ca;
	TlsServer *tls;
} Fixture;

static bool only_app(const char *host, void *userdata)
{
	return streq(host, "app.localhost") || streq(host, "api.app.localhost");
}

static void fixture_init(Fixture *f, bool h2)
{
	f->dir = dir_in_tmp("ca");
	f->ca = open_ca(f->dir, only_app);
	f->ca_file = strdup(ca_cert_path(f->ca));
	ASSERT_OK(tls_server_new(f->ca, h2, &f->tls));
}

static void fixture_done(Fixture *f)
{
	tls_server_free(f->tls);
	ca_free(f->ca);
	free(f->dir);
	free(f->ca_file);
}

/* ---- the CA ---- */

TEST(ca_created_with_modes_constraints_and_subject)
{
	_cleanup_free_ char *dir = dir_in_tmp("state/ca");
	Ca *ca = open_ca(dir, NULL);

	ASSERT_EQ(file_mode(dir) & 07777, 0700);
	_cleanup_free_ char *leaves = strdupf("%s/leaves", dir);
	ASSERT_EQ(file_mode(leaves) & 07777, 0700);
	_cleanup_free_ char *key = strdupf("%s/ca.key", dir);
	ASSERT_TRUE(S_ISREG(file_mode(key)));
	ASSERT_EQ(file_mode(key) & 07777, 0600);
	ASSERT_STRCONTAINS(ca_cert_path(ca), "/state/ca/ca.crt");

	gnutls_x509_crt_t crt = load_crt(ca_cert_path(ca));
	unsigned critical = 0, is_ca = 0;
	int pathlen = -1;
	ASSERT_OK(gnutls_x509_crt_get_basic_constraints(crt, &critical, &is_ca, &pathlen));
	ASSERT_TRUE(critical);
	ASSERT_TRUE(is_ca);
	ASSERT_EQ(pathlen, 0);
	unsigned usage = 0;
	ASSERT_OK(gnutls_x509_crt_get_key_usage(crt, &usage, &critical));
	ASSERT_EQ(usage, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);

	gnutls_datum_t dn;
	ASSERT_OK(gnutls_x509_crt_get_dn3(crt, &dn, 0));
	ASSERT_STRCONTAINS((char *)dn.data, "O=locald");
	ASSERT_STRCONTAINS((char *)dn.data, "CN=locald development CA (");
	ASSERT_STRCONTAINS((char *)dn.data, "@");
	gnutls_free(dn.data);

	unsigned bits = 0;
	ASSERT_EQ(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_ECDSA);
	gnutls_ecc_curve_t curve;
	ASSERT_OK(gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, NULL, NULL));
	ASSERT_EQ(curve, GNUTLS_ECC_CURVE_SECP256R1);

	uint8_t serial[40];
	size_t serial_size = sizeof serial;
	ASSERT_OK(gnutls_x509_crt_get_serial(crt, serial, &serial_size));
	ASSERT_EQ(serial_size, 16);
	ASSERT_TRUE(serial[0] < 0x80);

	time_t now = time(NULL);
	time_t days = (gnutls_x509_crt_get_expiration_time(crt) - now) / DAY;
	ASSERT_TRUE(days >= 3640 && days <= 3651);
	ASSERT_TRUE(gnutls_x509_crt_get_activation_time(crt) <= now);

	unsigned status = 1;
	ASSERT_OK(gnutls_x509_crt_verify(crt, &crt, 1, 0, &status));
	ASSERT_EQ(status, 0);
	gnutls_x509_crt_deinit(crt);
	ca_free(ca);
}

TEST(ca_second_open_loads_the_same_ca)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca");
	char a[65], b[65];
	Ca *ca = open_ca(dir, NULL);
	fingerprint(ca_cert_path(ca), a);
	ca_free(ca);
	ca = open_ca(dir, NULL);
	fingerprint(ca_cert_path(ca), b);
	ASSERT_STREQ(a, b);

	/* And leaves minted by the reopened CA verify against the file. */
	Fixture f = { 0 };
	f.dir = dir;
	f.ca = ca;
	f.ca_file = strdup(ca_cert_path(ca));
	ASSERT_OK(tls_server_new(ca, true, &f.tls));
	Client c;
	handshake(f.tls, f.ca_file, &(ClientOptions){ .sni = "x.localhost" }, &c);
	ASSERT_EQ(c.handshake, 0);
	ASSERT_EQ(c.verify_right, 0);
	client_done(&c);
	f.dir = NULL;
	fixture_done(&f);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void copy_file(const char *from, const char *to)
{
	gnutls_datum_t d;
	ASSERT_EQ(gnutls_load_file(from, &d), 0);
	write_file(to, d.data, d.size);
	gnutls_free(d.data);
}

static void expect_open_error(const char *dir, const char *what)
{
	CaOptions o = { .dir = dir };
	Ca *ca = NULL;
	_cleanup_free_ char *error = NULL;
	ASSERT_TRUE(ca_open_with_error(&o, &ca, &error) < 0);
	ASSERT_NULL(ca);
	ASSERT_NOT_NULL(error);
	ASSERT_STRCONTAINS(error, what);
	ASSERT_STRCONTAINS(error, dir);
	ASSERT_STRCONTAINS(error, "move the directory away");
	ASSERT_NULL(strchr(error, '\n'));
}

TEST(ca_damaged_pair_is_an_error_not_replaced)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca"), *other = dir_in_tmp("other");
	_cleanup_free_ char *crt = strdupf("%s/ca.crt", dir), *key = strdupf("%s/ca.key", dir);
	_cleanup_free_ char *other_key = strdupf("%s/ca.key", other);
	ca_free(open_ca(dir, NULL));
	ca_free(open_ca(other, NULL));

	/* Another CA's key next to our certificate. */
	copy_file(other_key, key);
	expect_open_error(dir, "does not belong to the key");
	char before[65], after[65];
	fingerprint(crt, before);

	/* A certificate that is not PEM. */
	_cleanup_free_ char *saved = strdupf("%s/saved.crt", test_tmpdir());
	copy_file(crt, saved);
	write_file(crt, "garbage\n", 8);
	expect_open_error(dir, "is damaged");
	gnutls_datum_t d;
	ASSERT_EQ(gnutls_load_file(crt, &d), 0);
	ASSERT_EQ(d.size, 8); /* untouched */
	gnutls_free(d.data);

	/* A missing half. */
	copy_file(saved, crt);
	fingerprint(crt, after);
	ASSERT_STREQ(before, after);
	ASSERT_EQ(unlink(key), 0);
	expect_open_error(dir, "ca.key is missing");
	ASSERT_EQ(access(key, F_OK), -1);
}

/* A self-signed pair written as <dir>/ca.crt + ca.key. */
static void write_self_signed(const char *dir, bool is_ca, time_t not_after)
{
	gnutls_x509_privkey_t key;
	gnutls_privkey_t signer;
	gnutls_x509_crt_t crt;
	gnutls_datum_t crt_pem, key_pem;
	ASSERT_EQ(mkdir(dir, 0700), 0);
	ASSERT_EQ(gnutls_x509_privkey_init(&key), 0);
	ASSERT_EQ(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
		  0);
	ASSERT_EQ(gnutls_x509_crt_init(&crt), 0);
	ASSERT_EQ(gnutls_x509_crt_set_version(crt, 3), 0);
	ASSERT_EQ(gnutls_x509_crt_set_serial(crt, "\x01", 1), 0);
	ASSERT_EQ(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "t", 1), 0);
	ASSERT_EQ(gnutls_x509_crt_set_activation_time(crt, not_after - 10 * DAY), 0);
	ASSERT_EQ(gnutls_x509_crt_set_expiration_time(crt, not_after), 0);
	ASSERT_EQ(gnutls_x509_crt_set_basic_constraints(crt, is_ca, -1), 0);
	ASSERT_EQ(gnutls_x509_crt_set_key(crt, key), 0);
	ASSERT_EQ(gnutls_privkey_init(&signer), 0);
	ASSERT_EQ(gnutls_privkey_import_x509(signer, key, 0), 0);
	ASSERT_EQ(gnutls_x509_crt_privkey_sign(crt, crt, signer, GNUTLS_DIG_SHA256, 0), 0);
	ASSERT_EQ(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem), 0);
	ASSERT_EQ(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						    GNUTLS_PKCS_PLAIN, &key_pem),
		  0);
	_cleanup_free_ char *c = strdupf("%s/ca.crt", dir), *k = strdupf("%s/ca.key", dir);
	write_file(c, crt_pem.data, crt_pem.size);
	write_file(k, key_pem.data, key_pem.size);
	gnutls_free(crt_pem.data);
	gnutls_free(key_pem.data);
	gnutls_privkey_deinit(signer);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

TEST(ca_expired_or_not_a_ca_is_an_error)
{
	_cleanup_free_ char *expired = dir_in_tmp("expired"), *leaf = dir_in_tmp("leaf");
	write_self_signed(expired, true, time(NULL) - DAY);
	expect_open_error(expired, "has expired");
	write_self_signed(leaf, false, time(NULL) + 100 * DAY);
	expect_open_error(leaf, "is not a CA certificate");
}

TEST(ca_concurrent_first_starts_end_with_one_ca)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca");
	enum {
		N = 4
	};
	int fds[N][2];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(pipe(fds[i]), 0);
		pids[i] = fork();
		ASSERT_TRUE(pids[i] >= 0);
		if (pids[i] == 0) {
			close(fds[i][0]);
			CaOptions o = { .dir = dir };
			Ca *ca = NULL;
			if (ca_open(&o, &ca) < 0)
				_exit(1);
			char fp[65];
			fingerprint(ca_cert_path(ca), fp);
			if (write(fds[i][1], fp, 64) != 64)
				_exit(2);
			ca_free(ca);
			_exit(0);
		}
		close(fds[i][1]);
	}
	char first[65] = "";
	for (int i = 0; i < N; i++) {
		int status;
		ASSERT_EQ(waitpid(pids[i], &status, 0), pids[i]);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(WEXITSTATUS(status), 0);
		char fp[65] = "";
		ASSERT_EQ(read(fds[i][0], fp, 64), 64);
		close(fds[i][0]);
		if (i == 0)
			memcpy(first, fp, sizeof fp);
		ASSERT_STREQ(fp, first);
	}
	_cleanup_free_ char *crt = strdupf("%s/ca.crt", dir);
	char now[65];
	fingerprint(crt, now);
	ASSERT_STREQ(now, first);
}

/* ---- host names ---- */

TEST(host_names_validated_before_touching_a_path)
{
	static const char *const good[] = {
		"localhost",
		"app.localhost",
		"x-y.z9.localhost",
		"0.test",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.localhost",
	};
	static const char *const bad[] = {
		"",
		"../x",
		"..",
		".",
		"a..b",
		".a",
		"a.",
		"App.localhost", /* the API takes lower case; the TLS layer lowers SNI */
		"-a.localhost",
		"a-.localhost",
		"a_b.localhost",
		"*.localhost",
		"a/b",
		"a b",
		"a\nb",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.localhost",
	};
	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		ASSERT_TRUE(ca_host_name_valid(good[i]));
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (ca_host_name_valid(bad[i]))
			test_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
	ASSERT_FALSE(ca_host_name_valid(NULL));

	char long_name[300];
	for (int i = 0; i < 50; i++)
		memcpy(long_name + 5 * i, "abcd.", 5);
	memcpy(long_name + 250, "xyz", 4); /* 253 bytes */
	ASSERT_EQ(strlen(long_name), 253);
	ASSERT_TRUE(ca_host_name_valid(long_name));
	memcpy(long_name + 253, "w", 2);
	ASSERT_FALSE(ca_host_name_valid(long_name));

	_cleanup_free_ char *dir = dir_in_tmp("ca");
	Ca *ca = open_ca(dir, NULL);
	gnutls_certificate_credentials_t cred = NULL;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		ASSERT_ERR(ca_credentials_for(ca, bad[i], &cred), EINVAL);
	ASSERT_NULL(cred);
	_cleanup_free_ char *escaped = strdupf("%s/x.pem", dir);
	ASSERT_EQ(access(escaped, F_OK), -1);
	CaStats st;
	ca_get_stats(ca, &st);
	ASSERT_EQ(st.minted, 0);
	ca_free(ca);
}

/* ---- leaves over real handshakes ---- */

TEST(leaf_verifies_for_its_name_only)
{
	Fixture f;
	fixture_init(&f, true);
	Client c;
	handshake(f.tls, f.ca_file, &(ClientOptions){ .sni = "app.localhost" }, &c);
	ASSERT_EQ(c.handshake, 0);
	ASSERT_EQ(c.verify_right, 0);
	ASSERT_TRUE(c.verify_wrong & GNUTLS_CERT_INVALID);
	ASSERT_TRUE(c.verify_wrong & GNUTLS_CERT_UNEXPECTED_OWNER);
	ASSERT_TRUE(c.server.has_sni);
	ASSERT_STREQ(c.server.sni, "app.localhost");

	/* What the leaf says. */
	gnutls_x509_crt_t leaf = c.peer;
	ASSERT_NOT_NULL(leaf);
	ASSERT_TRUE(crt_has_dns_name(leaf, "app.localhost"));
	ASSERT_EQ(crt_san_count(leaf), 1);
	char oid[128];
	size_t oid_size = sizeof oid;
	ASSERT_OK(gnutls_x509_crt_get_key_purpose_oid(leaf, 0, oid, &oid_size, NULL));
	ASSERT_STREQ(oid, GNUTLS_KP_TLS_WWW_SERVER);
	unsigned critical = 0, is_ca = 1;
	int pathlen;
	ASSERT_OK(gnutls_x509_crt_get_basic_constraints(leaf, &critical, &is_ca, &pathlen));
	ASSERT_FALSE(is_ca);
	unsigned bits = 0;
	ASSERT_EQ(gnutls_x509_crt_get_pk_algorithm(leaf, &bits), GNUTLS_PK_ECDSA);
	time_t now = time(NULL), from = gnutls_x509_crt_get_activation_time(leaf),
	       until = gnutls_x509_crt_get_expiration_time(leaf);
	ASSERT_TRUE(from <= now - 3500 && from >= now - 3700);
	ASSERT_EQ((until - from + DAY / 2) / DAY, CA_LEAF_DAYS);
	ASSERT_TRUE(until - from <= 825 * DAY);
	client_done(&c);

	/* Same answer through ca_credentials_for() and a name the filter does not know. */
	gnutls_certificate_credentials_t cred;
	ASSERT_OK(ca_credentials_for(f.ca, "other.localhost", &cred));
	ca_credentials_unref(f.ca, cred);
	fixture_done(&f);
}

TEST(unknown_or_missing_sni_gets_the_fallback_leaf)
{
	Fixture f;
	fixture_init(&f, true);
	static const char *const cases[] = {
		"nope.localhost",
		NULL,
		"-a.localhost",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.localhost",
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Client c;
		handshake(f.tls, f.ca_file, &(ClientOptions){ .sni = cases[i] }, &c);
		ASSERT_EQ(c.handshake, 0);
		ASSERT_NOT_NULL(c.peer);
		ASSERT_TRUE(crt_has_dns_name(c.peer, "locald.localhost"));
		ASSERT_FALSE(crt_has_dns_name(c.peer, "nope.localhost"));
		if (cases[i] && ca_host_name_valid(cases[i]))
			ASSERT_STREQ(c.server.sni, cases[i]);
		else
			ASSERT_FALSE(c.server.has_sni);
		client_done(&c);
	}
	/* GnuTLS itself refuses SNI with bytes outside letters, digits, '-' and '.'. */
	Client bad;
	handshake(f.tls, f.ca_file, &(ClientOptions){ .sni = "bad_name.localhost" }, &bad);
	ASSERT_EQ(bad.server.handshake, GNUTLS_E_RECEIVED_DISALLOWED_NAME);
	client_done(&bad);

	/* Nothing was minted or written for the unknown name. */
	_cleanup_free_ char *p = leaf_path(f.dir, "nope.localhost");
	ASSERT_EQ(access(p, F_OK), -1);

	/* SNI in upper case with a trailing dot is the same host. */
	Client c;
	handshake(f.tls, f.ca_file, &(ClientOptions){ .sni = "API.App.LocalHost." }, &c);
	ASSERT_EQ(c.handshake, 0);
	ASSERT_TRUE(crt_has_dns_name(c.peer, "api.app.localhost"));
	ASSERT_STREQ(c.server.sni, "api.app.localhost");
	client_done(&c);
	fixture_done(&f);
}

TEST(alpn_h2_http11_or_none)
{
	Fixture f;
	fixture_init(&f, true);
	static const struct {
		const char *offer[2];
		const char *expect;
	} cases[] = {
		{ { "http/1.1", "h2" }, "h2" }, /* our preference wins */
		{ { "h2", "http/1.1" }, "h2" }, { { "http/1.1", NULL }, "http/1.1" },
		{ { NULL, NULL }, NULL },       { { "spdy/3", NULL }, NULL },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Client c;
		ClientOptions o = { .sni = "app.localhost" };
		memcpy(o.alpn, cases[i].offer, sizeof o.alpn);
		handshake(f.tls, f.ca_file, &o, &c);
		ASSERT_EQ(c.handshake, 0);
		if (cases[i].expect) {
			ASSERT_STREQ(c.alpn, cases[i].expect);
			ASSERT_STREQ(c.server.alpn, cases[i].expect);
		} else {
			ASSERT_STREQ(c.alpn, "");
			ASSERT_FALSE(c.server.has_alpn);
		}
		client_done(&c);
	}
	fixture_done(&f);

	/* Without h2, an h2-capable client gets HTTP/1.1. */
	Fixture g;
	fixture_init(&g, false);
	Client c;
	handshake(g.tls, g.ca_file,
		  &(ClientOptions){ .sni = "app.localhost", .alpn = { "h2", "http/1.1" } }, &c);
	ASSERT_EQ(c.handshake, 0);
	ASSERT_STREQ(c.alpn, "http/1.1");
	client_done(&c);
	fixture_done(&g);
}

TEST(tls12_and_tls13_negotiate_older_versions_refused)
{
	Fixture f;
	fixture_init(&f, true);
	static const struct {
		const char *priority;
		gnutls_protocol_t version;
		unsigned hello_retries;
	} cases[] = {
		{ "NORMAL", GNUTLS_TLS1_3, 0 },
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.3", GNUTLS_TLS1_3, 0 },
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.2", GNUTLS_TLS1_2, 0 },
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305", GNUTLS_TLS1_2,
		  0 },
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP256R1", GNUTLS_TLS1_3, 0 },
		/* A client whose first choice is not ours still gets its own key share
		 * used: no HelloRetryRequest round trip. */
		{ "NORMAL:-GROUP-ALL:+GROUP-SECP256R1:+GROUP-X25519", GNUTLS_TLS1_3, 0 },
		{ "NORMAL:-GROUP-ALL:+GROUP-SECP384R1:+GROUP-X25519", GNUTLS_TLS1_3, 0 },
		/* Its only share is for a group we do not take: one retry, and the
		 * certificate is chosen again for the second ClientHello. */
		{ "NORMAL:-GROUP-ALL:+GROUP-SECP521R1:+GROUP-X25519", GNUTLS_TLS1_3, 1 },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Client c;
		handshake(f.tls, f.ca_file,
			  &(ClientOptions){ .sni = "app.localhost", .priority = cases[i].priority },
			  &c);
		ASSERT_EQ(c.handshake, 0);
		ASSERT_EQ(c.version, cases[i].version);
		ASSERT_EQ(c.verify_right, 0);
		ASSERT_EQ(c.hello_retries, cases[i].hello_retries);
		client_done(&c);
	}
	Client c;
	handshake(f.tls, f.ca_file,
		  &(ClientOptions){ .sni = "app.localhost",
				    .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0" },
		  &c);
	ASSERT_TRUE(c.handshake < 0);
	ASSERT_TRUE(c.server.handshake < 0);
	client_done(&c);
	fixture_done(&f);
}

TEST(session_resumption_with_tickets)
{
	Fixture f;
	fixture_init(&f, true);
	static const char *const priorities[] = { "NORMAL:-VERS-ALL:+VERS-TLS1.3",
						  "NORMAL:-VERS-ALL:+VERS-TLS1.2" };
	for (size_t i = 0; i < ELEMENTSOF(priorities); i++) {
		Client first, second;
		ClientOptions o = { .sni = "app.localhost",
				    .priority = priorities[i],
				    .alpn = { "h2" } };
		handshake(f.tls, f.ca_file, &o, &first);
		ASSERT_EQ(first.handshake, 0);
		ASSERT_FALSE(first.resumed);
		ASSERT_TRUE(first.session_data.size > 0);
		o.resume = &first.session_data;
		handshake(f.tls, f.ca_file, &o, &second);
		ASSERT_EQ(second.handshake, 0);
		ASSERT_TRUE(second.resumed);
		ASSERT_STREQ(second.alpn, "h2");
		ASSERT_STREQ(second.server.sni, "app.localhost");
		client_done(&first);
		client_done(&second);
	}

	/* A ticket from another TlsServer (another process lifetime) is not honoured. */
	Client first, second;
	ClientOptions o = { .sni = "app.localhost" };
	handshake(f.tls, f.ca_file, &o, &first);
	TlsServer *other;
	ASSERT_OK(tls_server_new(f.ca, true, &other));
	o.resume = &first.session_data;
	handshake(other, f.ca_file, &o, &second);
	ASSERT_EQ(second.handshake, 0);
	ASSERT_FALSE(second.resumed);
	client_done(&first);
	client_done(&second);
	tls_server_free(other);
	fixture_done(&f);
}

/* ---- the disk cache ---- */

TEST(leaf_cached_on_disk_and_reloaded)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca");
	Ca *ca = open_ca(dir, NULL);
	gnutls_certificate_credentials_t a, b;
	ASSERT_OK(ca_credentials_for(ca, "app.localhost", &a));
	ASSERT_OK(ca_credentials_for(ca, "app.localhost", &b));
	ASSERT_TRUE(a == b);
	CaStats st;
	ca_get_stats(ca, &st);
	ASSERT_EQ(st.minted, 1);
	ASSERT_EQ(st.memory_hits, 1);
	ASSERT_EQ(st.loaded_from_disk, 0);
	ASSERT_EQ(st.save_errors, 0);
	ca_credentials_unref(ca, a);
	ca_credentials_unref(ca, b);

	_cleanup_free_ char *p = leaf_path(dir, "app.localhost");
	ASSERT_TRUE(S_ISREG(file_mode(p)));
	ASSERT_EQ(file_mode(p) & 07777, 0600);
	gnutls_x509_crt_t on_disk = load_crt(p);
	char fp1[65];
	fingerprint(p, fp1);
	ca_free(ca);

	ca = open_ca(dir, NULL);
	ASSERT_OK(ca_credentials_for(ca, "app.localhost", &a));
	ca_credentials_unref(ca, a);
	ca_get_stats(ca, &st);
	ASSERT_EQ(st.minted, 0);
	ASSERT_EQ(st.loaded_from_disk, 1);
	char fp2[65];
	fingerprint(p, fp2);
	ASSERT_STREQ(fp1, fp2);

	/* The reloaded leaf is what a client gets. */
	TlsServer *tls;
	ASSERT_OK(tls_server_new(ca, true, &tls));
	Client c;
	handshake(tls, ca_cert_path(ca), &(ClientOptions){ .sni = "app.localhost" }, &c);
	ASSERT_EQ(c.handshake, 0);
	ASSERT_EQ(c.verify_right, 0);
	ASSERT_TRUE(gnutls_x509_crt_equals(c.peer, on_disk));
	client_done(&c);
	gnutls_x509_crt_deinit(on_disk);
	tls_server_free(tls);
	ca_free(ca);
}

/* A leaf for `host` signed by the CA in `ca_dir`, valid `days` from an hour ago, written
 * where proxyd keeps its leaves in `leaves_dir`: what an older proxyd left behind. */
static void write_leaf_full(const char *ca_dir, const char *leaves_dir, const char *host,
			    time_t not_after)
{
	_cleanup_free_ char *crt_path = strdupf("%s/ca.crt", ca_dir),
			    *key_path = strdupf("%s/ca.key", ca_dir);
	gnutls_x509_crt_t ca_crt = load_crt(crt_path), crt;
	gnutls_x509_privkey_t ca_key, key;
	gnutls_privkey_t signer;
	gnutls_datum_t d, crt_pem, key_pem;
	ASSERT_EQ(gnutls_load_file(key_path, &d), 0);
	ASSERT_EQ(gnutls_x509_privkey_init(&ca_key), 0);
	ASSERT_EQ(gnutls_x509_privkey_import2(ca_key, &d, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
	gnutls_free(d.data);
	ASSERT_EQ(gnutls_privkey_init(&signer), 0);
	ASSERT_EQ(gnutls_privkey_import_x509(signer, ca_key, 0), 0);

	ASSERT_EQ(gnutls_x509_privkey_init(&key), 0);
	ASSERT_EQ(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
		  0);
	ASSERT_EQ(gnutls_x509_crt_init(&crt), 0);
	time_t now = time(NULL);
	ASSERT_EQ(gnutls_x509_crt_set_version(crt, 3), 0);
	ASSERT_EQ(gnutls_x509_crt_set_serial(crt, "\x01\x02", 2), 0);
	ASSERT_EQ(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host, strlen(host),
						       GNUTLS_FSAN_SET),
		  0);
	ASSERT_EQ(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
	ASSERT_EQ(gnutls_x509_crt_set_expiration_time(crt, not_after), 0);
	ASSERT_EQ(gnutls_x509_crt_set_key(crt, key), 0);
	ASSERT_EQ(gnutls_x509_crt_privkey_sign(crt, ca_crt, signer, GNUTLS_DIG_SHA256, 0), 0);
	ASSERT_EQ(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem), 0);
	ASSERT_EQ(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						    GNUTLS_PKCS_PLAIN, &key_pem),
		  0);
	_cleanup_free_ char *out = strdupf("%s/leaves/%s.pem", leaves_dir, host);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, crt_pem.data, crt_pem.size), (ssize_t)crt_pem.size);
	ASSERT_EQ(write(fd, key_pem.data, key_pem.size), (ssize_t)key_pem.size);
	close(fd);
	gnutls_free(crt_pem.data);
	gnutls_free(key_pem.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_privkey_deinit(key);
	gnutls_privkey_deinit(signer);
	gnutls_x509_privkey_deinit(ca_key);
}

static void write_leaf(const char *ca_dir, const char *leaves_dir, const char *host, int days)
{
	write_leaf_full(ca_dir, leaves_dir, host, time(NULL) - 3600 + (time_t)days * DAY);
}

static void write_leaf_until(const char *dir, const char *host, time_t not_after)
{
	write_leaf_full(dir, dir, host, not_after);
}

static time_t leaf_days_left(const char *path)
{
	gnutls_x509_crt_t crt = load_crt(path);
	time_t left = (gnutls_x509_crt_get_expiration_time(crt) - time(NULL)) / DAY;
	gnutls_x509_crt_deinit(crt);
	return left;
}

static CaStats stats_after_get(const char *dir, const char *host)
{
	Ca *ca = open_ca(dir, NULL);
	gnutls_certificate_credentials_t cred;
	ASSERT_OK(ca_credentials_for(ca, host, &cred));
	ca_credentials_unref(ca, cred);
	CaStats st;
	ca_get_stats(ca, &st);
	ca_free(ca);
	return st;
}

TEST(leaf_on_disk_reminted_when_due_foreign_or_damaged)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca"), *other = dir_in_tmp("other");
	ca_free(open_ca(dir, NULL));
	ca_free(open_ca(other, NULL));
	_cleanup_free_ char *p = leaf_path(dir, "app.localhost");

	/* Still 60 days: kept. */
	write_leaf(dir, dir, "app.localhost", 60);
	CaStats st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.loaded_from_disk, 1);
	ASSERT_EQ(st.minted, 0);
	ASSERT_TRUE(leaf_days_left(p) < 60);

	/* 10 days left (< CA_LEAF_RENEW_DAYS): re-minted and rewritten. */
	write_leaf(dir, dir, "app.localhost", 10);
	st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.loaded_from_disk, 0);
	ASSERT_EQ(st.minted, 1);
	ASSERT_TRUE(leaf_days_left(p) >= CA_LEAF_DAYS - 2);
	ASSERT_EQ(file_mode(p) & 07777, 0600);

	/* Expired: re-minted. */
	write_leaf(dir, dir, "app.localhost", -5);
	st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.minted, 1);

	/* Signed by another CA (a regenerated one): re-minted. */
	write_leaf(other, dir, "app.localhost", 300);
	st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.loaded_from_disk, 0);
	ASSERT_EQ(st.minted, 1);

	/* Valid, but for another name (a renamed file): re-minted. */
	_cleanup_free_ char *q = leaf_path(dir, "web.localhost");
	write_leaf(dir, dir, "web.localhost", 300);
	ASSERT_EQ(rename(q, p), 0);
	st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.minted, 1);

	/* Damaged: re-minted. */
	write_file(p, "-----BEGIN CERTIFICATE-----\nnope\n", 34);
	st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.minted, 1);

	/* And the result is served and verifies. */
	st = stats_after_get(dir, "app.localhost");
	ASSERT_EQ(st.loaded_from_disk, 1);
	ASSERT_EQ(st.minted, 0);
}

TEST(leaf_not_written_is_still_served)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca"), *leaves = strdupf("%s/leaves", dir);
	Ca *ca = open_ca(dir, NULL);
	/* A directory where the leaf file should go: it cannot be replaced. */
	_cleanup_free_ char *p = leaf_path(dir, "app.localhost");
	ASSERT_EQ(mkdir(p, 0700), 0);
	gnutls_certificate_credentials_t cred;
	ASSERT_OK(ca_credentials_for(ca, "app.localhost", &cred));
	ca_credentials_unref(ca, cred);
	CaStats st;
	ca_get_stats(ca, &st);
	ASSERT_EQ(st.minted, 1);
	ASSERT_EQ(st.save_errors, 1);
	ASSERT_TRUE(S_ISDIR(file_mode(p)));
	/* No temporary file left behind. */
	DIR *d = opendir(leaves);
	ASSERT_NOT_NULL(d);
	unsigned n = 0;
	for (struct dirent *de; (de = readdir(d));)
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	ASSERT_EQ(n, 1);
	ca_free(ca);
}

TEST(leaf_renewed_in_memory_while_still_referenced)
{
	_cleanup_free_ char *dir = dir_in_tmp("ca");
	ca_free(open_ca(dir, NULL));
	/* A leaf just beyond the renewal threshold: loaded now, due a few seconds later. */
	enum {
		MARGIN = 6
	};
	time_t written = time(NULL);
	_cleanup_free_ char *p = leaf_path(dir, "app.localhost");
	write_leaf_until(dir, "app.localhost", written + (time_t)CA_LEAF_RENEW_DAYS * DAY + MARGIN);

	Ca *ca = open_ca(dir, NULL);
	gnutls_certificate_credentials_t old, renewed;
	ASSERT_OK(ca_credentials_for(ca, "app.localhost", &old));
	CaStats st;
	ca_get_stats(ca, &st);
	if (st.loaded_from_disk != 1)
		SKIP("the machine took longer than the margin to load the leaf");
	while (time(NULL) <= written + MARGIN)
		sleep(1);

	/* Due now: renewed, while `old` stays usable until released. */
	ASSERT_OK(ca_credentials_for(ca, "app.localhost", &renewed));
	ASSERT_TRUE(renewed != old);
	ca_get_stats(ca, &st);
	ASSERT_EQ(st.minted, 1);
	ASSERT_TRUE(leaf_days_left(p) >= CA_LEAF_DAYS - 2);

	TlsServer *tls;
	ASSERT_OK(tls_server_new(ca, true, &tls));
	Client c;
	handshake(tls, ca_cert_path(ca), &(ClientOptions){ .sni = "app.localhost" }, &c);
	ASSERT_EQ(c.handshake, 0);
	ASSERT_TRUE((gnutls_x509_crt_get_expiration_time(c.peer) - time(NULL)) / DAY >=
		    CA_LEAF_DAYS - 2);
	client_done(&c);
	ca_credentials_unref(ca, old);
	ca_credentials_unref(ca, renewed);
	tls_server_free(tls);
	ca_free(ca);
}

/* ---- threads ---- */

typedef struct Racer {
	Ca *ca;
	pthread_barrier_t *barrier;
	gnutls_certificate_credentials_t cred;
	int r;
} Racer;

static void *racer_run(void *userdata)
{
	Racer *x = userdata;
	pthread_barrier_wait(x->barrier);
	x->r = ca_credentials_for(x->ca, "race.localhost", &x->cred);
	return NULL;
}

TEST(concurrent_credentials_for_mint_once)
{
	Fixture f;
	fixture_init(&f, true);
	enum {
		N = 4
	};
	pthread_barrier_t barrier;
	ASSERT_EQ(pthread_barrier_init(&barrier, NULL, N), 0);
	Racer racers[N];
	pthread_t th[N];
	CaStats before;
	ca_get_stats(f.ca, &before);
	for (int i = 0; i < N; i++) {
		racers[i] = (Racer){ .ca = f.ca, .barrier = &barrier };
		ASSERT_EQ(pthread_create(&th[i], NULL, racer_run, &racers[i]), 0);
	}
	for (int i = 0; i < N; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < N; i++) {
		ASSERT_OK(racers[i].r);
		ASSERT_TRUE(racers[i].cred == racers[0].cred);
	}
	CaStats after;
	ca_get_stats(f.ca, &after);
	ASSERT_EQ(after.minted - before.minted, 1);
	ASSERT_EQ(after.memory_hits - before.memory_hits, N - 1);
	for (int i = 0; i < N; i++)
		ca_credentials_unref(f.ca, racers[i].cred);
	pthread_barrier_destroy(&barrier);

	/* The credentials work for a handshake afterwards. */
	Client c;
	handshake(f.tls, f.ca_file, &(ClientOptions){ .sni = "app.localhost" }, &c);
	ASSERT_EQ(c.handshake, 0);
	client_done(&c);
	fixture_done(&f);
}

typedef struct Handshaker {
	Fixture *f;
	const char *sni;
	int failures;
} Handshaker;

static void *handshaker_run(void *userdata)
{
	Handshaker *h = userdata;
	for (int i = 0; i < 8; i++) {
		Client c;
		handshake(h->f->tls, h->f->ca_file, &(ClientOptions){ .sni = h->sni }, &c);
		if (c.handshake != 0 || c.verify_right != 0)
			h->failures++;
		client_done(&c);
	}
	return NULL;
}

TEST(concurrent_handshakes_share_credentials)
{
	Fixture f;
	fixture_init(&f, true);
	enum {
		N = 4
	};
	static const char *const names[N] = { "app.localhost", "api.app.localhost", "app.localhost",
					      "locald.localhost" };
	Handshaker h[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		h[i] = (Handshaker){ .f = &f, .sni = names[i] };
		ASSERT_EQ(pthread_create(&th[i], NULL, handshaker_run, &h[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
		ASSERT_EQ(h[i].failures, 0);
	}
	CaStats st;
	ca_get_stats(f.ca, &st);
	/* The fallback (at tls_server_new) and the two app names, each once. */
	ASSERT_EQ(st.minted, 3);
	fixture_done(&f);
}

TEST_MAIN();
