/* SPDX-License-Identifier: MIT */
/* shim-cert.c: which certificates trust-ca accepts. Fixtures made with openssl req. */

#include "test.h"
#include "../shim.h"

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
			     "MIIB1zCCAXygAwIBAgIUWFFovx0XgJrIiADGjxyldn+4jDMwCgYIKoZIzj0EAwIw\n"
			     "NzEkMCIGA1UEAwwbbG9jYWxkIGRldmVsb3BtZW50IENBICh0QGgpMQ8wDQYDVQQK\n"
			     "DAZsb2NhbGQwHhcNMjYxMTIzMTU0NzUxWhcNMzYxMTIwMTU0NzUxWjA3MSQwIgYD\n"
			     "VQQDDBtsb2NhbGQgZGV2ZWxvcG1lbnQgQ0EgKHRAaCkxDzANBgNVBAoMBmxvY2Fs\n"
			     "ZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMWKUfO0GuJoWURuqfjAw8xEhNaQ\n"
			     "pH+khBj+vUP9sTSRyCB4iGU8fLI15W/LdRpAdI6hFnZyMI9ooISQISnFn8CjZjBk\n"
			     "MB0GA1UdDgQWBBQsrjGTupz8ihndOyZZ054330jmijAfBgNVHSMEGDAWgBQsrjGT\n"
			     "upz8ihndOyZZ054330jmijASBgNVHRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQE\n"
			     "AwIBBjAKBggqhkjOPQQDAgNJADBGAiEAl45at0mStgPqyxydL6gP/NZy0FNptTHO\n"
			     "JWMulDvBZKgCIQCtkuqAaI+B4sFH+7btAcoNsuFNDblpZRskuYjjDkalZw==\n"
			     "-----END CERTIFICATE-----\n";
static const char leaf_pem[] = "-----BEGIN CERTIFICATE-----\n"
			       "MIIBpDCCAUqgAwIBAgIUOfG4tl10UTSq9cbCGeY3EHzKGscwCgYIKoZIzj0EAwIw\n"
			       "KTEWMBQGA1UEAwwNd2ViLmxvY2FsaG9zdDEPMA0GA1UECgwGbG9jYWxkMB4XDTI2\n"
			       "MTEyMzE1NDc1MVoXDTM2MTEyMDE1NDc1MVowKTEWMBQGA1UEAwwNd2ViLmxvY2Fs\n"
			       "aG9zdDEPMA0GA1UECgwGbG9jYWxkMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
			       "chaN6NpuyQcfXbpMY0XSrk+4ZqcnW1rBfM0X9FhWVbFv8PrjCbWk491NA8xmK564\n"
			       "4PWF3wLrOVcWRrRRsuDxLaNQME4wHQYDVR0OBBYEFDgWoiXVR0+pDV3SRjtPArSA\n"
			       "lbFlMB8GA1UdIwQYMBaAFDgWoiXVR0+pDV3SRjtPArSAlbFlMAwGA1UdEwEB/wQC\n"
			       "MAAwCgYIKoZIzj0EAwIDSAAwRQIhAOpxoHEynrrHdd1C2ydrAs1aRRqzJmQ0zqtm\n"
			       "L9le3JjQAiAzz4Vvdb6omFVZH340OKUesdNnjFefehVtAYqS//yPIA==\n"
			       "-----END CERTIFICATE-----\n";
static const char nobc_pem[] = "-----BEGIN CERTIFICATE-----\n"
			       "MIIBhzCCAS6gAwIBAgIUYnbveU4CEaiQAqbv4Wjj6ujik7MwCgYIKoZIzj0EAwIw\n"
			       "EzERMA8GA1UEAwwITz1sb2NhbGQwHhcNMjYxMTIzMTU0NzUxWhcNMzYxMTIwMTU0\n"
			       "NzUxWjATMREwDwYDVQQDDAhPPWxvY2FsZDBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
			       "A0IABCPSWcDA9J0N3wuCHzANJd+JxGTkkkMsE8S2fYusXi6TF7y8VAQJ2Nq4Pzr9\n"
			       "OOTm2TJyzFSvblF+f1QU5nbHVjKjYDBeMB0GA1UdDgQWBBQ26NOX9MUsPZvIZ4h1\n"
			       "qqbYDX/sIDAfBgNVHSMEGDAWgBQ26NOX9MUsPZvIZ4h1qqbYDX/sIDAPBgNVHRMB\n"
			       "Af8EBTADAQH/MAsGA1UdDwQEAwIHgDAKBggqhkjOPQQDAgNHADBEAiADozGHVr9j\n"
			       "eOaE3IsXBEnP/OHwS8y/cPQOOUtE2IH+AAIgLwGqhGnvEYNA0GbzY3OKK8s6aPvH\n"
			       "Wlnt2xoNWQBSALE=\n"
			       "-----END CERTIFICATE-----\n";
static const char otherorg_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBizCCATGgAwIBAgIUVqI1JOaZobxSP60/t2ymA2vgwLcwCgYIKoZIzj0EAwIw\n"
    "GzEKMAgGA1UEAwwBeDENMAsGA1UECgwEZXZpbDAeFw0yNjExMjMxNTQ3NTFaFw0z\n"
    "NjExMjAxNTQ3NTFaMBsxCjAIBgNVBAMMAXgxDTALBgNVBAoMBGV2aWwwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAARbd+inUotMwWtzQy5HKbMEBSq3Sh2VOFwddCnG\n"
    "hOhPtG/ZY2OVSzn1UbMolxbp7E2QYd/MF6irr0jfk8jYeFTYo1MwUTAdBgNVHQ4E\n"
    "FgQUSvfkVs9zbGcFveENyqjjgdUisg0wHwYDVR0jBBgwFoAUSvfkVs9zbGcFveEN\n"
    "yqjjgdUisg0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiA/aevD\n"
    "5TPZBLaSaUzSyTWLXpN3YhlfvZRS9wrCzPI+5wIhAMy+Dd5TC61V3LZDtAOfasO0\n"
    "vgnzYrunmxzsVEsA+Mho\n"
    "-----END CERTIFICATE-----\n";

static int check(const char *pem)
{
	char *out = NULL;
	size_t n = 0;
	int r = shim_ca_check(pem, strlen(pem), &out, &n);
	free(out);
	return r;
}

TEST(locald_ca_accepted_and_reencoded_identically)
{
	char *out = NULL;
	size_t n = 0;
	ASSERT_OK(shim_ca_check(ca_pem, strlen(ca_pem), &out, &n));
	/* openssl writes 64-column PEM, as we do: the output is the input. */
	ASSERT_EQ(n, strlen(ca_pem));
	ASSERT_TRUE(memcmp(out, ca_pem, n) == 0);
	free(out);
}

TEST(whitespace_around_is_fine)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "\n  %s\n\n", ca_pem);
	ASSERT_OK(check(buf));
}

TEST(other_organization_refused)
{
	ASSERT_ERR(check(otherorg_pem), EPERM);
}

TEST(leaf_refused)
{
	ASSERT_ERR(check(leaf_pem), EPERM);
}

TEST(no_basic_constraints_and_o_in_cn_refused)
{
	ASSERT_ERR(check(nobc_pem), EPERM);
}

TEST(garbage_refused)
{
	ASSERT_ERR(check(""), EINVAL);
	ASSERT_ERR(check("hello"), EINVAL);
	ASSERT_ERR(check("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"), EINVAL);
	ASSERT_ERR(check("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), EINVAL);
}

TEST(two_certificates_refused)
{
	char buf[8192];
	snprintf(buf, sizeof(buf), "%s%s", ca_pem, ca_pem);
	ASSERT_ERR(check(buf), EINVAL);
	snprintf(buf, sizeof(buf), "%sjunk\n", ca_pem);
	ASSERT_ERR(check(buf), EINVAL);
}

TEST(private_key_refused)
{
	ASSERT_ERR(check("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), EINVAL);
}

TEST(every_truncation_and_bit_flip_is_handled)
{
	size_t n = strlen(ca_pem);
	char *buf = malloc(n + 1);
	ASSERT_NOT_NULL(buf);
	for (size_t cut = 0; cut < n - 1; cut++) { /* the last byte is "\n" */
		memcpy(buf, ca_pem, cut);
		buf[cut] = '\0';
		ASSERT_TRUE(check(buf) < 0);
	}
	for (size_t i = 28; i < n - 26; i++) {
		memcpy(buf, ca_pem, n + 1);
		buf[i] = buf[i] == 'A' ? 'B' : 'A';
		(void)check(buf); /* must not crash; may still be a valid CA */
	}
	free(buf);
}

TEST_MAIN();
