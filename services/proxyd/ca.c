/* SPDX-License-Identifier: MIT */
#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "paths.h"
#include "strutil.h"

#define CA_CERT_FILE "ca.crt"
#define CA_KEY_FILE "ca.key"
#define CA_LOCK_FILE "ca.lock"
#define CA_LEAVES_DIR "leaves"
#define CA_VALIDITY_DAYS 3650
#define CA_BACKDATE_SEC 3600
#define CA_FILE_MAX (64 * 1024)
/* Names with their own leaf held in memory. Only routed names reach the cache when a
 * filter is set; the cap bounds what a peer inventing SNI names can make us mint
 * when there is none. */
#define CA_CACHE_MAX 1024
#define DAY_SEC (24 * 3600)
#define CN_MAX 64 /* X.520 ub-common-name */

typedef struct Leaf {
	char *host;
	gnutls_certificate_credentials_t cred; /* NULL while being minted */
	time_t not_after;
	unsigned refs; /* one for the cache while cached, one per caller */
} Leaf;

struct Ca {
	char *dir, *cert_path, *fallback_host;
	int dir_fd, leaves_fd;
	CaHostFilter filter;
	void *filter_userdata;

	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t x509_key;
	gnutls_privkey_t key;
	/* GnuTLS does not promise that one certificate or key object may be used from two
	 * threads at once: signing and verifying with the CA take turns (key generation,
	 * the slow part of minting, does not need it). */
	pthread_mutex_t sign_lock;

	pthread_mutex_t lock;
	pthread_cond_t minted; /* a placeholder became ready or went away */
	Leaf **leaves;         /* sorted by host; includes placeholders */
	size_t n_leaves, n_leaves_allocated;
	Leaf **retired; /* replaced in the cache, still referenced */
	size_t n_retired, n_retired_allocated;
	CaStats stats;
};

static inline void crt_freep(gnutls_x509_crt_t *p)
{
	if (*p)
		gnutls_x509_crt_deinit(*p);
}
static inline void x509_key_freep(gnutls_x509_privkey_t *p)
{
	if (*p)
		gnutls_x509_privkey_deinit(*p);
}
static inline void privkey_freep(gnutls_privkey_t *p)
{
	if (*p)
		gnutls_privkey_deinit(*p);
}
static inline void datum_freep(gnutls_datum_t *d)
{
	gnutls_free(d->data);
	d->data = NULL;
}
static inline void cred_freep(gnutls_certificate_credentials_t *p)
{
	if (*p)
		gnutls_certificate_free_credentials(*p);
}
#define _cleanup_crt_ _cleanup_(crt_freep)
#define _cleanup_x509_key_ _cleanup_(x509_key_freep)
#define _cleanup_privkey_ _cleanup_(privkey_freep)
#define _cleanup_datum_ _cleanup_(datum_freep)
#define _cleanup_cred_ _cleanup_(cred_freep)

/* GnuTLS error → -errno: allocation failure stays ENOMEM, `fallback` for the rest. */
static int gnutls_to_errno(int r, int fallback)
{
	if (r >= 0)
		return 0;
	if (r == GNUTLS_E_MEMORY_ERROR)
		return -ENOMEM;
	return fallback;
}

bool ca_host_name_valid(const char *host)
{
	if (!host)
		return false;
	size_t total = 0, label = 0;
	char prev = '.';
	for (const char *p = host; *p; p++, total++) {
		char c = *p;
		if (total >= 253)
			return false;
		if (c == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (c == '-' && label == 0)
				return false;
			if (++label > 63)
				return false;
		} else
			return false;
		prev = c;
	}
	return label > 0 && prev != '-';
}

/* ---- files ---- */

static int read_file_at(int dir_fd, const char *name, gnutls_datum_t *ret)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	struct stat st;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (st.st_size > CA_FILE_MAX)
		return -EFBIG;
	size_t size = (size_t)st.st_size;
	uint8_t *buf = gnutls_malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	size_t n = 0;
	while (n < size) {
		ssize_t k = read(fd, buf + n, size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int r = negative_errno();
			gnutls_free(buf);
			return r;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = 0;
	ret->data = buf;
	ret->size = (unsigned)n;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * Replace dir/name with the concatenation of parts, atomically: a fresh temp file
 * created O_EXCL with its final mode (a key is never readable by others, not even for a
 * moment), fsync, rename over the target, fsync the directory.
 */
static int write_file_atomic(int dir_fd, const char *name, const gnutls_datum_t *parts,
			     size_t n_parts, mode_t mode)
{
	char tmp[300];
	uint8_t rnd[8];
	int r = gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd);
	if (r < 0)
		return -EIO;
	uint64_t v;
	memcpy(&v, rnd, sizeof v);
	r = strfmt(tmp, sizeof tmp, ".%s.%016llx.tmp", name, (unsigned long long)v);
	if (r < 0)
		return r;

	_cleanup_close_ int fd =
	    openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return negative_errno();
	for (size_t i = 0; i < n_parts && r >= 0; i++)
		r = write_all(fd, parts[i].data, parts[i].size);
	if (r >= 0 && fsync(fd) < 0)
		r = negative_errno();
	if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
		r = negative_errno();
	if (r < 0) {
		(void)unlinkat(dir_fd, tmp, 0);
		return r;
	}
	(void)fsync(dir_fd);
	return 0;
}

/* ---- certificates ---- */

static int random_serial(gnutls_x509_crt_t crt)
{
	uint8_t serial[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial) < 0)
		return -EIO;
	/* A positive INTEGER of the full 16 bytes. */
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
	return gnutls_to_errno(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), -EIO);
}

static int new_p256_key(gnutls_x509_privkey_t *ret)
{
	_cleanup_x509_key_ gnutls_x509_privkey_t key = NULL;
	int r = gnutls_x509_privkey_init(&key);
	if (r < 0)
		return gnutls_to_errno(r, -EIO);
	r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (r < 0)
		return gnutls_to_errno(r, -EIO);
	*ret = TAKE_PTR(key);
	return 0;
}

static int set_subject_key_id(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	uint8_t id[64];
	size_t size = sizeof id;
	int r = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, id, &size);
	if (r >= 0)
		r = gnutls_x509_crt_set_subject_key_id(crt, id, size);
	return gnutls_to_errno(r, -EIO);
}

static bool crt_matches_key(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	uint8_t a[64], b[64];
	size_t as = sizeof a, bs = sizeof b;
	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &as) < 0 ||
	    gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &bs) < 0)
		return false;
	return as == bs && memcmp(a, b, as) == 0;
}

/* "user@host", printable ASCII only (it goes into a CN and a 64-byte limit). */
static void user_at_host(char *buf, size_t size)
{
	char user[64] = "", host[256] = "";
	struct passwd pw, *res = NULL;
	char pwbuf[1024];
	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res && res->pw_name)
		(void)strscpy(user, sizeof user, res->pw_name);
	else
		(void)strfmt(user, sizeof user, "uid%u", (unsigned)geteuid());
	if (gethostname(host, sizeof host - 1) < 0 || !host[0])
		(void)strscpy(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	(void)strfmt(buf, size, "%s@%s", user, host);
	for (char *p = buf; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

static int ca_generate(Ca *ca, char **ret_error)
{
	_cleanup_x509_key_ gnutls_x509_privkey_t key = NULL;
	_cleanup_privkey_ gnutls_privkey_t signer = NULL;
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	_cleanup_datum_ gnutls_datum_t crt_pem = { 0 }, key_pem = { 0 };
	char who[CN_MAX], cn[CN_MAX + 1];
	time_t now = time(NULL);
	int r;

	r = new_p256_key(&key);
	if (r < 0)
		return r;
	if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_x509_crt_set_version(crt, 3)) < 0)
		return gnutls_to_errno(r, -EIO);
	r = random_serial(crt);
	if (r < 0)
		return r;

	/* The CN must fit 64 bytes: "locald development CA (" + who + ")". */
	user_at_host(who, CN_MAX - STRLEN("locald development CA ()"));
	(void)strfmt(cn, sizeof cn, "locald development CA (%s)", who);
	if ((r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "locald",
					       STRLEN("locald"))) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
					       (unsigned)strlen(cn))) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - CA_BACKDATE_SEC)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)CA_VALIDITY_DAYS *
								    DAY_SEC)) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt,
					       GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN)) < 0)
		return gnutls_to_errno(r, -EIO);
	r = set_subject_key_id(crt, key);
	if (r < 0)
		return r;
	if ((r = gnutls_privkey_init(&signer)) < 0 ||
	    (r = gnutls_privkey_import_x509(signer, key, 0)) < 0 ||
	    (r = gnutls_x509_crt_privkey_sign(crt, crt, signer, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem)) < 0 ||
	    (r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						   GNUTLS_PKCS_PLAIN, &key_pem)) < 0)
		return gnutls_to_errno(r, -EIO);

	/* Key first: a crash in between leaves a key without a certificate, which the next
	 * start reports instead of guessing. */
	r = write_file_atomic(ca->dir_fd, CA_KEY_FILE, &key_pem, 1, 0600);
	if (r >= 0)
		r = write_file_atomic(ca->dir_fd, CA_CERT_FILE, &crt_pem, 1, 0644);
	if (r < 0) {
		if (ret_error)
			*ret_error =
			    strdupf("cannot write the new CA into %s: %s", ca->dir, strerror(-r));
		return r;
	}

	ca->crt = TAKE_PTR(crt);
	ca->x509_key = TAKE_PTR(key);
	ca->key = TAKE_PTR(signer);
	return 0;
}

static int ca_load(Ca *ca, char **ret_error)
{
	_cleanup_datum_ gnutls_datum_t crt_pem = { 0 }, key_pem = { 0 };
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	_cleanup_x509_key_ gnutls_x509_privkey_t key = NULL;
	_cleanup_privkey_ gnutls_privkey_t signer = NULL;
	const char *hint = "move the directory away to generate a new CA, then run "
			   "`localctl trust` again";
	int r;

	r = read_file_at(ca->dir_fd, CA_CERT_FILE, &crt_pem);
	if (r < 0) {
		if (ret_error)
			*ret_error = strdupf("cannot read the CA certificate %s: %s", ca->cert_path,
					     strerror(-r));
		return r;
	}
	r = read_file_at(ca->dir_fd, CA_KEY_FILE, &key_pem);
	if (r < 0) {
		if (ret_error)
			*ret_error = strdupf("cannot read the CA key %s/" CA_KEY_FILE ": %s",
					     ca->dir, strerror(-r));
		return r;
	}
	if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_x509_privkey_init(&key)) < 0)
		return gnutls_to_errno(r, -EIO);
	r = gnutls_x509_crt_import(crt, &crt_pem, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		if (ret_error)
			*ret_error = strdupf("the CA certificate %s is damaged (%s); %s",
					     ca->cert_path, gnutls_strerror(r), hint);
		return gnutls_to_errno(r, -EBADMSG);
	}
	r = gnutls_x509_privkey_import2(key, &key_pem, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		if (ret_error)
			*ret_error = strdupf("the CA key %s/" CA_KEY_FILE " is damaged (%s); %s",
					     ca->dir, gnutls_strerror(r), hint);
		return gnutls_to_errno(r, -EBADMSG);
	}
	if (!crt_matches_key(crt, key)) {
		if (ret_error)
			*ret_error = strdupf("the CA certificate %s does not belong to the key "
					     "%s/" CA_KEY_FILE "; %s",
					     ca->cert_path, ca->dir, hint);
		return -EBADMSG;
	}
	unsigned critical = 0, is_ca = 0;
	int pathlen = -1;
	if (gnutls_x509_crt_get_basic_constraints(crt, &critical, &is_ca, &pathlen) < 0 || !is_ca) {
		if (ret_error)
			*ret_error = strdupf("%s is not a CA certificate; %s", ca->cert_path, hint);
		return -EBADMSG;
	}
	time_t expires = gnutls_x509_crt_get_expiration_time(crt);
	if (expires != (time_t)-1 && expires <= time(NULL)) {
		if (ret_error)
			*ret_error =
			    strdupf("the CA certificate %s has expired; %s", ca->cert_path, hint);
		return -EKEYEXPIRED;
	}
	if ((r = gnutls_privkey_init(&signer)) < 0 ||
	    (r = gnutls_privkey_import_x509(signer, key, 0)) < 0)
		return gnutls_to_errno(r, -EIO);

	ca->crt = TAKE_PTR(crt);
	ca->x509_key = TAKE_PTR(key);
	ca->key = TAKE_PTR(signer);
	return 0;
}

static bool file_exists_at(int dir_fd, const char *name, int *ret_error)
{
	struct stat st;
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return true;
	if (errno != ENOENT)
		*ret_error = negative_errno();
	return false;
}

/* Under the lock file, so two first starts end with one CA. */
static int ca_load_or_generate(Ca *ca, char **ret_error)
{
	_cleanup_close_ int lock_fd =
	    openat(ca->dir_fd, CA_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0) {
		int r = negative_errno();
		if (ret_error)
			*ret_error =
			    strdupf("cannot open %s/" CA_LOCK_FILE ": %s", ca->dir, strerror(-r));
		return r;
	}
	while (flock(lock_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return negative_errno();

	int r = 0;
	bool have_crt = file_exists_at(ca->dir_fd, CA_CERT_FILE, &r);
	bool have_key = file_exists_at(ca->dir_fd, CA_KEY_FILE, &r);
	if (r < 0) {
		if (ret_error)
			*ret_error = strdupf("cannot look into %s: %s", ca->dir, strerror(-r));
		return r;
	}
	if (!have_crt && !have_key)
		return ca_generate(ca, ret_error);
	if (have_crt != have_key) {
		if (ret_error)
			*ret_error = strdupf("the CA in %s is incomplete: %s is missing; move the "
					     "directory away to generate a new CA, then run "
					     "`localctl trust` again",
					     ca->dir, have_crt ? CA_KEY_FILE : CA_CERT_FILE);
		return -EBADMSG;
	}
	return ca_load(ca, ret_error);
}

/* ---- leaves ---- */

static Leaf *leaf_free(Leaf *l)
{
	if (!l)
		return NULL;
	if (l->cred)
		gnutls_certificate_free_credentials(l->cred);
	free(l->host);
	free(l);
	return NULL;
}

static int mint_leaf(Ca *ca, const char *host, gnutls_x509_crt_t *ret_crt,
		     gnutls_x509_privkey_t *ret_key)
{
	_cleanup_x509_key_ gnutls_x509_privkey_t key = NULL;
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	time_t now = time(NULL);
	uint8_t id[64];
	size_t id_size = sizeof id;
	int r;

	r = new_p256_key(&key);
	if (r < 0)
		return r;
	if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_x509_crt_set_version(crt, 3)) < 0)
		return gnutls_to_errno(r, -EIO);
	r = random_serial(crt);
	if (r < 0)
		return r;
	size_t host_len = strlen(host);
	/* The CN is informational (clients use the SAN) and limited to 64 bytes. */
	if (host_len <= CN_MAX &&
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host,
					       (unsigned)host_len)) < 0)
		return gnutls_to_errno(r, -EIO);
	if ((r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
						      (unsigned)host_len, GNUTLS_FSAN_SET)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - CA_BACKDATE_SEC)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(
		 crt, now - CA_BACKDATE_SEC + (time_t)CA_LEAF_DAYS * DAY_SEC)) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0)
		return gnutls_to_errno(r, -EIO);
	r = set_subject_key_id(crt, key);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ca->sign_lock);
	if (gnutls_x509_crt_get_subject_key_id(ca->crt, id, &id_size, NULL) < 0 ||
	    (r = gnutls_x509_crt_set_authority_key_id(crt, id, id_size)) >= 0)
		r = gnutls_x509_crt_privkey_sign(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0);
	pthread_mutex_unlock(&ca->sign_lock);
	if (r < 0)
		return gnutls_to_errno(r, -EIO);
	*ret_crt = TAKE_PTR(crt);
	*ret_key = TAKE_PTR(key);
	return 0;
}

static bool leaf_due(time_t not_after, time_t now)
{
	return not_after - now < (time_t)CA_LEAF_RENEW_DAYS * DAY_SEC;
}

/* A leaf from disk, if it is for `host`, ours, signed by the current CA and not due for
 * renewal; -ESTALE if it exists but must be replaced, -ENOENT if there is none. */
static int load_leaf(Ca *ca, const char *host, gnutls_x509_crt_t *ret_crt,
		     gnutls_x509_privkey_t *ret_key)
{
	_cleanup_datum_ gnutls_datum_t pem = { 0 };
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	_cleanup_x509_key_ gnutls_x509_privkey_t key = NULL;
	char name[300];
	int r;

	r = strfmt(name, sizeof name, "%s.pem", host);
	if (r < 0)
		return r;
	r = read_file_at(ca->leaves_fd, name, &pem);
	if (r == -ENOMEM || r == -ENOENT)
		return r;
	if (r < 0)
		return -ESTALE;
	if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_x509_privkey_init(&key)) < 0)
		return gnutls_to_errno(r, -EIO);
	/* The certificate comes first; the key import looks for its own PEM block. */
	if ((r = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (r = gnutls_x509_privkey_import2(key, &pem, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -ESTALE;
	if (!crt_matches_key(crt, key) || !gnutls_x509_crt_check_hostname2(crt, host, 0))
		return -ESTALE;
	unsigned status = 0;
	pthread_mutex_lock(&ca->sign_lock);
	r = gnutls_x509_crt_verify(
	    crt, &ca->crt, 1,
	    GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS, &status);
	pthread_mutex_unlock(&ca->sign_lock);
	if (r < 0 || status != 0)
		return -ESTALE;
	time_t now = time(NULL), begins = gnutls_x509_crt_get_activation_time(crt),
	       ends = gnutls_x509_crt_get_expiration_time(crt);
	if (begins == (time_t)-1 || ends == (time_t)-1 || begins > now || leaf_due(ends, now))
		return -ESTALE;
	*ret_crt = TAKE_PTR(crt);
	*ret_key = TAKE_PTR(key);
	return 0;
}

static int save_leaf(Ca *ca, const char *host, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	_cleanup_datum_ gnutls_datum_t crt_pem = { 0 }, key_pem = { 0 };
	char name[300];
	int r = strfmt(name, sizeof name, "%s.pem", host);
	if (r < 0)
		return r;
	if ((r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem)) < 0 ||
	    (r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						   GNUTLS_PKCS_PLAIN, &key_pem)) < 0)
		return gnutls_to_errno(r, -EIO);
	gnutls_datum_t parts[] = { crt_pem, key_pem };
	return write_file_atomic(ca->leaves_fd, name, parts, ELEMENTSOF(parts), 0600);
}

/* Disk, else mint. Runs without the cache lock. Returns 1 if loaded from disk, 0 if
 * minted (2 if minted but not saved). */
static int leaf_obtain(Ca *ca, const char *host, gnutls_certificate_credentials_t *ret_cred,
		       time_t *ret_not_after)
{
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	_cleanup_x509_key_ gnutls_x509_privkey_t key = NULL;
	_cleanup_cred_ gnutls_certificate_credentials_t cred = NULL;
	int how;

	int r = load_leaf(ca, host, &crt, &key);
	if (r == -ENOMEM)
		return r;
	if (r >= 0)
		how = 1;
	else {
		r = mint_leaf(ca, host, &crt, &key);
		if (r < 0)
			return r;
		how = save_leaf(ca, host, crt, key) < 0 ? 2 : 0;
	}
	/* Parsed and converted once here; every handshake for the host shares it. */
	if ((r = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
	    (r = gnutls_certificate_set_x509_key(cred, &crt, 1, key)) < 0)
		return gnutls_to_errno(r, -EIO);
	*ret_not_after = gnutls_x509_crt_get_expiration_time(crt);
	*ret_cred = TAKE_PTR(cred);
	return how;
}

/* Binary search; *ret_index = where host is or would go. Called with the lock held. */
static Leaf *cache_find(Ca *ca, const char *host, size_t *ret_index)
{
	size_t lo = 0, hi = ca->n_leaves;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(host, ca->leaves[mid]->host);
		if (c == 0) {
			*ret_index = mid;
			return ca->leaves[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_index = lo;
	return NULL;
}

static void cache_remove_at(Ca *ca, size_t i)
{
	memmove(ca->leaves + i, ca->leaves + i + 1, (ca->n_leaves - i - 1) * sizeof(Leaf *));
	ca->n_leaves--;
}

static int grow(Leaf ***array, size_t n, size_t *allocated)
{
	if (n < *allocated)
		return 0;
	size_t want = MAX(*allocated * 2, (size_t)16);
	Leaf **a = realloc(*array, want * sizeof(Leaf *));
	if (!a)
		return -ENOMEM;
	*array = a;
	*allocated = want;
	return 0;
}

/* Drop the cache's reference to a ready leaf it no longer serves; the caller made room
 * in `retired`. Lock held. */
static void cache_retire_at(Ca *ca, size_t i)
{
	Leaf *l = ca->leaves[i];
	cache_remove_at(ca, i);
	if (--l->refs == 0)
		leaf_free(l);
	else
		ca->retired[ca->n_retired++] = l;
}

int ca_credentials_for(Ca *ca, const char *host, gnutls_certificate_credentials_t *ret)
{
	if (!ca || !ret || !ca_host_name_valid(host))
		return -EINVAL;

	pthread_mutex_lock(&ca->lock);
	Leaf *l;
	size_t i;
	for (;;) {
		l = cache_find(ca, host, &i);
		if (!l)
			break;
		if (!l->cred) {
			/* Another thread is minting this name: wait rather than mint twice. */
			pthread_cond_wait(&ca->minted, &ca->lock);
			continue;
		}
		/* Renew; without room to track the old one, it serves a while longer. */
		if (leaf_due(l->not_after, time(NULL)) &&
		    grow(&ca->retired, ca->n_retired, &ca->n_retired_allocated) >= 0) {
			cache_retire_at(ca, i);
			(void)cache_find(ca, host, &i);
			break;
		}
		l->refs++;
		ca->stats.memory_hits++;
		*ret = l->cred;
		pthread_mutex_unlock(&ca->lock);
		return 0;
	}

	/* A placeholder, so that other threads asking for this name wait for us. */
	int r = -ENOSPC;
	Leaf *placeholder = NULL;
	if (ca->n_leaves < CA_CACHE_MAX) {
		r = grow(&ca->leaves, ca->n_leaves, &ca->n_leaves_allocated);
		if (r >= 0) {
			placeholder = calloc(1, sizeof(Leaf));
			if (placeholder)
				placeholder->host = strdup(host);
			if (!placeholder || !placeholder->host) {
				placeholder = leaf_free(placeholder);
				r = -ENOMEM;
			}
		}
	}
	if (!placeholder) {
		pthread_mutex_unlock(&ca->lock);
		return r;
	}
	memmove(ca->leaves + i + 1, ca->leaves + i, (ca->n_leaves - i) * sizeof(Leaf *));
	ca->leaves[i] = placeholder;
	ca->n_leaves++;
	pthread_mutex_unlock(&ca->lock);

	gnutls_certificate_credentials_t cred = NULL;
	time_t not_after = 0;
	r = leaf_obtain(ca, host, &cred, &not_after);

	pthread_mutex_lock(&ca->lock);
	/* Nobody else removes or fills a placeholder: it is still in the cache. */
	Leaf *again = cache_find(ca, host, &i);
	if (r < 0 || again != placeholder) {
		if (again == placeholder)
			cache_remove_at(ca, i);
		leaf_free(placeholder);
		if (cred)
			gnutls_certificate_free_credentials(cred);
		pthread_cond_broadcast(&ca->minted);
		pthread_mutex_unlock(&ca->lock);
		return r < 0 ? r : -EIO;
	}
	placeholder->cred = cred;
	placeholder->not_after = not_after;
	placeholder->refs = 2; /* the cache's and the caller's */
	if (r == 1)
		ca->stats.loaded_from_disk++;
	else
		ca->stats.minted++;
	if (r == 2)
		ca->stats.save_errors++;
	pthread_cond_broadcast(&ca->minted);
	pthread_mutex_unlock(&ca->lock);
	*ret = cred;
	return 0;
}

void ca_credentials_unref(Ca *ca, gnutls_certificate_credentials_t cred)
{
	if (!ca || !cred)
		return;
	pthread_mutex_lock(&ca->lock);
	/* A linear scan: the cache holds the routed names (tens), not the clients. */
	for (size_t i = 0; i < ca->n_leaves; i++)
		if (ca->leaves[i]->cred == cred) {
			if (ca->leaves[i]->refs > 1)
				ca->leaves[i]->refs--;
			goto done;
		}
	for (size_t i = 0; i < ca->n_retired; i++)
		if (ca->retired[i]->cred == cred) {
			Leaf *l = ca->retired[i];
			if (--l->refs == 0) {
				ca->retired[i] = ca->retired[--ca->n_retired];
				leaf_free(l);
			}
			break;
		}
done:
	pthread_mutex_unlock(&ca->lock);
}

int ca_credentials_select(Ca *ca, const char *host, gnutls_certificate_credentials_t *ret)
{
	if (!ca || !ret)
		return -EINVAL;
	if (host && ca_host_name_valid(host) &&
	    (!ca->filter || streq(host, ca->fallback_host) ||
	     ca->filter(host, ca->filter_userdata))) {
		int r = ca_credentials_for(ca, host, ret);
		/* Out of cache room or a failed mint: the fallback still lets the client see
		 * a page instead of a handshake failure. */
		if (r >= 0 || r == -EINVAL)
			return r;
	}
	return ca_credentials_for(ca, ca->fallback_host, ret);
}

void ca_get_stats(Ca *ca, CaStats *ret)
{
	pthread_mutex_lock(&ca->lock);
	*ret = ca->stats;
	pthread_mutex_unlock(&ca->lock);
}

const char *ca_cert_path(const Ca *ca)
{
	return ca ? ca->cert_path : NULL;
}

/* ---- lifetime ---- */

Ca *ca_free(Ca *ca)
{
	if (!ca)
		return NULL;
	for (size_t i = 0; i < ca->n_leaves; i++)
		leaf_free(ca->leaves[i]);
	for (size_t i = 0; i < ca->n_retired; i++)
		leaf_free(ca->retired[i]);
	free(ca->leaves);
	free(ca->retired);
	if (ca->key)
		gnutls_privkey_deinit(ca->key);
	if (ca->x509_key)
		gnutls_x509_privkey_deinit(ca->x509_key);
	if (ca->crt)
		gnutls_x509_crt_deinit(ca->crt);
	pthread_cond_destroy(&ca->minted);
	pthread_mutex_destroy(&ca->lock);
	pthread_mutex_destroy(&ca->sign_lock);
	safe_close(ca->dir_fd);
	safe_close(ca->leaves_fd);
	free(ca->dir);
	free(ca->cert_path);
	free(ca->fallback_host);
	free(ca);
	return NULL;
}

static inline void ca_freep(Ca **p)
{
	ca_free(*p);
}

static int open_dir_at(int at_fd, const char *path, int flags, char **ret_error, const char *shown)
{
	int fd = openat(at_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	if (fd < 0) {
		int r = negative_errno();
		if (ret_error)
			*ret_error =
			    strdupf("cannot open the directory %s: %s", shown, strerror(-r));
		return r;
	}
	return fd;
}

int ca_open_with_error(const CaOptions *opts, Ca **ret, char **ret_error)
{
	if (!opts || isempty(opts->dir) || !ret)
		return -EINVAL;
	const char *fallback = opts->fallback_host ? opts->fallback_host : "locald.localhost";
	if (!ca_host_name_valid(fallback)) {
		if (ret_error)
			*ret_error = strdupf("invalid fallback host name \"%s\"", fallback);
		return -EINVAL;
	}

	_cleanup_(ca_freep) Ca *ca = calloc(1, sizeof(Ca));
	if (!ca)
		return -ENOMEM;
	ca->dir_fd = ca->leaves_fd = -1;
	/* Initialised before anything can fail, so ca_free() may destroy them. */
	pthread_mutex_init(&ca->lock, NULL);
	pthread_mutex_init(&ca->sign_lock, NULL);
	pthread_cond_init(&ca->minted, NULL);
	ca->filter = opts->filter;
	ca->filter_userdata = opts->filter_userdata;
	ca->dir = strdup(opts->dir);
	ca->cert_path = path_join(opts->dir, CA_CERT_FILE);
	ca->fallback_host = strdup(fallback);
	if (!ca->dir || !ca->cert_path || !ca->fallback_host)
		return -ENOMEM;

	int r = mkdir_p(ca->dir, 0700);
	if (r < 0) {
		if (ret_error)
			*ret_error =
			    strdupf("cannot create the CA directory %s: %s", ca->dir, strerror(-r));
		return r;
	}
	/* The directory itself may be a symlink the user made; what is inside is opened
	 * relative to it, never through a symlink. */
	r = open_dir_at(AT_FDCWD, ca->dir, 0, ret_error, ca->dir);
	if (r < 0)
		return r;
	ca->dir_fd = r;
	if (mkdirat(ca->dir_fd, CA_LEAVES_DIR, 0700) < 0 && errno != EEXIST) {
		r = negative_errno();
		if (ret_error)
			*ret_error = strdupf("cannot create %s/" CA_LEAVES_DIR ": %s", ca->dir,
					     strerror(-r));
		return r;
	}
	char shown[4096];
	(void)strfmt(shown, sizeof shown, "%s/" CA_LEAVES_DIR, ca->dir);
	r = open_dir_at(ca->dir_fd, CA_LEAVES_DIR, O_NOFOLLOW, ret_error, shown);
	if (r < 0)
		return r;
	ca->leaves_fd = r;

	r = ca_load_or_generate(ca, ret_error);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ca);
	return 0;
}

int ca_open(const CaOptions *opts, Ca **ret)
{
	return ca_open_with_error(opts, ret, NULL);
}
