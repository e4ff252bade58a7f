/* SPDX-License-Identifier: MIT */
/*
 * trust-ca's certificate check, sans-I/O: PEM → DER → the few X.509 fields that matter
 * (basicConstraints CA:TRUE, subject O=locald), then a fresh PEM of exactly that DER so
 * nothing unchecked reaches the trust store. A strict walk, not a full X.509 parser.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

typedef struct Der {
	const uint8_t *p;
	size_t n;
} Der;

/* Take the next TLV off d: tag and contents. Definite lengths up to 3 bytes only. */
static int der_next(Der *d, uint8_t *ret_tag, Der *ret_val)
{
	if (d->n < 2)
		return -EINVAL;
	uint8_t tag = d->p[0];
	size_t len = d->p[1], hdr = 2;
	if ((tag & 0x1f) == 0x1f) /* multi-byte tags never occur in what we read */
		return -EINVAL;
	if (len & 0x80) {
		size_t k = len & 0x7f;
		if (k == 0 || k > 3 || d->n < 2 + k)
			return -EINVAL;
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = (len << 8) | d->p[2 + i];
		hdr += k;
	}
	if (len > d->n - hdr)
		return -EINVAL;
	*ret_tag = tag;
	ret_val->p = d->p + hdr;
	ret_val->n = len;
	d->p += hdr + len;
	d->n -= hdr + len;
	return 0;
}

static int der_expect(Der *d, uint8_t tag, Der *ret_val)
{
	uint8_t t;
	Der save = *d;
	if (der_next(d, &t, ret_val) < 0)
		return -EINVAL;
	if (t != tag) {
		*d = save;
		return -ENOENT;
	}
	return 0;
}

static bool der_eq(const Der *v, const uint8_t *bytes, size_t n)
{
	return v->n == n && memcmp(v->p, bytes, n) == 0;
}

/* subject: SEQUENCE OF SET OF SEQUENCE { OID, value } */
static int subject_is_locald(Der name)
{
	static const uint8_t oid_o[] = { 0x55, 0x04, 0x0a };
	bool found = false;
	while (name.n > 0) {
		Der set, atv, oid, val;
		uint8_t t;
		if (der_expect(&name, 0x31, &set) < 0)
			return -EINVAL;
		while (set.n > 0) {
			if (der_expect(&set, 0x30, &atv) < 0 || der_expect(&atv, 0x06, &oid) < 0 ||
			    der_next(&atv, &t, &val) < 0 || atv.n != 0)
				return -EINVAL;
			if (der_eq(&oid, oid_o, sizeof(oid_o)) && (t == 0x0c || t == 0x13) &&
			    der_eq(&val, (const uint8_t *)"locald", 6))
				found = true;
		}
	}
	return found ? 0 : -EPERM;
}

/* extensions: [3] { SEQUENCE OF SEQUENCE { OID, BOOLEAN?, OCTET STRING } } */
static int extensions_say_ca(Der ext)
{
	static const uint8_t oid_bc[] = { 0x55, 0x1d, 0x13 };
	Der list, e, oid, crit, os, bc, flag;
	if (der_expect(&ext, 0x30, &list) < 0 || ext.n != 0)
		return -EINVAL;
	while (list.n > 0) {
		if (der_expect(&list, 0x30, &e) < 0 || der_expect(&e, 0x06, &oid) < 0)
			return -EINVAL;
		if (der_expect(&e, 0x01, &crit) == -EINVAL || der_expect(&e, 0x04, &os) < 0 ||
		    e.n != 0)
			return -EINVAL;
		if (!der_eq(&oid, oid_bc, sizeof(oid_bc)))
			continue;
		if (der_expect(&os, 0x30, &bc) < 0 || os.n != 0)
			return -EINVAL;
		if (der_expect(&bc, 0x01, &flag) == 0 && flag.n == 1 && flag.p[0] != 0)
			return 0;
		return -EPERM;
	}
	return -EPERM;
}

static int der_check(const uint8_t *der, size_t n)
{
	Der all = { der, n }, cert, tbs, v;
	uint8_t t;
	if (der_expect(&all, 0x30, &cert) < 0 || all.n != 0)
		return -EINVAL;
	if (der_expect(&cert, 0x30, &tbs) < 0 || der_expect(&cert, 0x30, &v) < 0 ||
	    der_expect(&cert, 0x03, &v) < 0 || cert.n != 0)
		return -EINVAL;
	if (der_expect(&tbs, 0xa0, &v) == -EINVAL) /* version, optional */
		return -EINVAL;
	Der subject;
	if (der_expect(&tbs, 0x02, &v) < 0 ||       /* serial */
	    der_expect(&tbs, 0x30, &v) < 0 ||       /* signature algorithm */
	    der_expect(&tbs, 0x30, &v) < 0 ||       /* issuer */
	    der_expect(&tbs, 0x30, &v) < 0 ||       /* validity */
	    der_expect(&tbs, 0x30, &subject) < 0 || /* subject */
	    der_expect(&tbs, 0x30, &v) < 0)         /* subjectPublicKeyInfo */
		return -EINVAL;
	Der ext = { NULL, 0 };
	while (tbs.n > 0) {
		if (der_next(&tbs, &t, &v) < 0)
			return -EINVAL;
		if (t == 0xa3)
			ext = v;
		else if (t != 0x81 && t != 0x82) /* issuer/subject unique IDs */
			return -EINVAL;
	}
	int r = subject_is_locald(subject);
	if (r < 0)
		return r;
	return ext.p ? extensions_say_ca(ext) : -EPERM;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"

int shim_ca_check(const char *pem, size_t n, char **ret_pem, size_t *ret_len)
{
	size_t i = 0, bl = strlen(PEM_BEGIN), el = strlen(PEM_END);
	while (i < n && is_ws(pem[i]))
		i++;
	if (n - i < bl || memcmp(pem + i, PEM_BEGIN, bl) != 0)
		return -EINVAL;
	i += bl;

	uint8_t *der = malloc(n);
	if (!der)
		return -ENOMEM;
	size_t dn = 0, pad = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	int r = -EINVAL;
	for (; i < n && pem[i] != '-'; i++) {
		if (is_ws(pem[i]))
			continue;
		if (pem[i] == '=') {
			pad++;
			continue;
		}
		int v = b64_value(pem[i]);
		if (v < 0 || pad > 0)
			goto out;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			der[dn++] = (uint8_t)(acc >> bits);
		}
	}
	if (pad > 2 || n - i < el || memcmp(pem + i, PEM_END, el) != 0)
		goto out;
	for (i += el; i < n; i++)
		if (!is_ws(pem[i]))
			goto out;
	r = der_check(der, dn);
	if (r < 0)
		goto out;

	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t cap = bl + el + 4 + (dn + 2) / 3 * 4 + (dn / 48 + 1) + 4;
	char *out = malloc(cap), *p = out;
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(p, PEM_BEGIN "\n", bl + 1);
	p += bl + 1;
	for (size_t k = 0; k < dn; k += 3) {
		uint32_t w = (uint32_t)der[k] << 16;
		size_t m = dn - k < 3 ? dn - k : 3;
		if (m > 1)
			w |= (uint32_t)der[k + 1] << 8;
		if (m > 2)
			w |= der[k + 2];
		*p++ = b64[(w >> 18) & 63];
		*p++ = b64[(w >> 12) & 63];
		*p++ = m > 1 ? b64[(w >> 6) & 63] : '=';
		*p++ = m > 2 ? b64[w & 63] : '=';
		if ((k / 3 + 1) % 16 == 0 || k + 3 >= dn)
			*p++ = '\n';
	}
	memcpy(p, PEM_END "\n", el + 1);
	p += el + 1;
	*ret_pem = out;
	*ret_len = (size_t)(p - out);
	r = 0;
out:
	free(der);
	return r;
}
