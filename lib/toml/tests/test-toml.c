/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <locale.h>
#include <math.h>

#include "buf.h"
#include "test.h"
#include "toml.h"

static TomlValue *parse_ok_at(const char *file, int line, const char *doc)
{
	TomlValue *root = NULL;
	TomlError err = {};
	int r = toml_parse(doc, strlen(doc), NULL, &root, &err);
	if (r < 0)
		test_fail(file, line, "parse failed (%d) at %" PRIu32 ":%" PRIu32 ": %s", r,
			  err.pos.line, err.pos.col, err.message);
	return root;
}
#define PARSE_OK(doc) parse_ok_at(__FILE__, __LINE__, doc)

static void parse_err_at(const char *file, int line, const char *doc, size_t len,
			 const TomlLimits *limits, int want_r, uint32_t want_line,
			 uint32_t want_col, const char *want_msg)
{
	TomlValue *root = (TomlValue *)0x1; /* must stay untouched */
	TomlError err = {};
	int r = toml_parse(doc, len, limits, &root, &err);
	if (r != want_r)
		test_fail(file, line, "expected %d, got %d (%s)", want_r, r, err.message);
	if (root != (TomlValue *)0x1)
		test_fail(file, line, "ret_root was written on failure");
	if (err.pos.line != want_line || err.pos.col != want_col)
		test_fail(file, line,
			  "error at %" PRIu32 ":%" PRIu32 ", expected %" PRIu32 ":%" PRIu32 ": %s",
			  err.pos.line, err.pos.col, want_line, want_col, err.message);
	if (!strstr(err.message, want_msg))
		test_fail(file, line, "message \"%s\" lacks \"%s\"", err.message, want_msg);
}
#define PARSE_ERR(doc, line, col, msg)                                                             \
	parse_err_at(__FILE__, __LINE__, doc, strlen(doc), NULL, -EINVAL, line, col, msg)
#define PARSE_LIMIT(doc, limits, line, col, msg)                                                   \
	parse_err_at(__FILE__, __LINE__, doc, strlen(doc), limits, -E2BIG, line, col, msg)

static const TomlValue *get(const TomlValue *t, const char *key)
{
	const TomlValue *v = toml_table_get(t, key, NULL);
	if (!v)
		test_fail(__FILE__, __LINE__, "key \"%s\" missing", key);
	return v;
}

TEST(empty_documents)
{
	const char *docs[] = { "", "\n", "# only a comment", "  \t\r\n\n# x\r\n", "\xEF\xBB\xBF" };
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		TomlValue *root = PARSE_OK(docs[i]);
		ASSERT_EQ(toml_type(root), TOML_TABLE);
		ASSERT_EQ(toml_table_size(root), 0);
		toml_free(root);
	}
	TomlValue *root = NULL;
	ASSERT_OK(toml_parse(NULL, 0, NULL, &root, NULL));
	toml_free(root);
	ASSERT_NULL(toml_free(NULL));
}

TEST(scalars)
{
	TomlValue *root = PARSE_OK("s = \"hi\"\n"
				   "i = -42\n"
				   "f = 6.25e-1\n"
				   "b = true\n"
				   "odt = 1979-05-27 07:32:00.5z\n"
				   "ldt = 1979-05-27t07:32:00\n"
				   "ld = 1979-05-27\n"
				   "lt = 07:32:00.999\n");
	size_t len;
	ASSERT_STREQ(toml_string(get(root, "s"), &len), "hi");
	ASSERT_EQ(len, 2);
	ASSERT_EQ(toml_integer(get(root, "i")), -42);
	ASSERT_TRUE(toml_float(get(root, "f")) == 0.625);
	ASSERT_TRUE(toml_bool(get(root, "b")));
	ASSERT_EQ(toml_type(get(root, "odt")), TOML_DATETIME);
	ASSERT_STREQ(toml_datetime(get(root, "odt")), "1979-05-27T07:32:00.5Z");
	ASSERT_EQ(toml_type(get(root, "ldt")), TOML_DATETIME_LOCAL);
	ASSERT_STREQ(toml_datetime(get(root, "ldt")), "1979-05-27T07:32:00");
	ASSERT_EQ(toml_type(get(root, "ld")), TOML_DATE_LOCAL);
	ASSERT_STREQ(toml_datetime(get(root, "ld")), "1979-05-27");
	ASSERT_EQ(toml_type(get(root, "lt")), TOML_TIME_LOCAL);
	ASSERT_STREQ(toml_datetime(get(root, "lt")), "07:32:00.999");
	toml_free(root);
}

TEST(integers)
{
	TomlValue *root = PARSE_OK("a = 9223372036854775807\nb = -9223372036854775808\n"
				   "c = 0x7FFF_ffff_FFFF_FFFF\nd = 0o777\ne = 0b1010\nf = 1_000\n"
				   "g = +0\nh = -0\ni = 0x0000_0001\n");
	ASSERT_TRUE(toml_integer(get(root, "a")) == INT64_MAX);
	ASSERT_TRUE(toml_integer(get(root, "b")) == INT64_MIN);
	ASSERT_TRUE(toml_integer(get(root, "c")) == INT64_MAX);
	ASSERT_EQ(toml_integer(get(root, "d")), 511);
	ASSERT_EQ(toml_integer(get(root, "e")), 10);
	ASSERT_EQ(toml_integer(get(root, "f")), 1000);
	ASSERT_EQ(toml_integer(get(root, "g")), 0);
	ASSERT_EQ(toml_integer(get(root, "h")), 0);
	ASSERT_EQ(toml_integer(get(root, "i")), 1);
	toml_free(root);

	PARSE_ERR("a = 9223372036854775808", 1, 5, "integer \"9223372036854775808\" does not fit");
	PARSE_ERR("a = -9223372036854775809", 1, 5, "does not fit in 64 bits");
	PARSE_ERR("a = 0x8000000000000000", 1, 5, "does not fit in 64 bits");
	PARSE_ERR("a = 012", 1, 5, "leading zeros are not allowed in \"012\"");
	PARSE_ERR("a = 1__2", 1, 5, "invalid number \"1__2\"");
	PARSE_ERR("a = 0x", 1, 5, "invalid number");
	PARSE_ERR("a = -0x1", 1, 5, "invalid number \"-0x1\"");
	PARSE_ERR("a = 0b102", 1, 5, "invalid base-2 integer");
}

TEST(floats)
{
	TomlValue *root =
	    PARSE_OK("a = 1e3\nb = -0.0\nc = inf\nd = -inf\ne = nan\nf = 1_0.0_1e0_1\n"
		     "g = 1e-400\nh = 0e0\n");
	ASSERT_TRUE(toml_float(get(root, "a")) == 1000.0);
	ASSERT_TRUE(toml_float(get(root, "b")) == 0.0 && signbit(toml_float(get(root, "b"))));
	ASSERT_TRUE(isinf(toml_float(get(root, "c"))) && toml_float(get(root, "c")) > 0);
	ASSERT_TRUE(isinf(toml_float(get(root, "d"))) && toml_float(get(root, "d")) < 0);
	ASSERT_TRUE(isnan(toml_float(get(root, "e"))));
	ASSERT_TRUE(toml_float(get(root, "f")) == 100.1);
	ASSERT_TRUE(toml_float(get(root, "g")) == 0.0); /* underflow rounds */
	ASSERT_EQ(toml_type(get(root, "h")), TOML_FLOAT);
	toml_free(root);

	PARSE_ERR("a = 1e400", 1, 5, "float \"1e400\" is out of range");
	PARSE_ERR("a = 1.", 1, 5, "expected digits after '.'");
	PARSE_ERR("a = .5", 1, 5, "expected a value, found \".5\"");
	PARSE_ERR("a = 1e", 1, 5, "expected digits in the exponent");
	PARSE_ERR("a = 01.5", 1, 5, "leading zeros");
	PARSE_ERR("a = Inf", 1, 5, "expected a value, found \"Inf\"");
}

TEST(floats_ignore_locale)
{
	/* A caller in a locale with a decimal comma must still read 0.5 as 0.5. */
	if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
		SKIP("no locale with a decimal comma installed");
	TomlValue *root = PARSE_OK("a = 0.5\n");
	ASSERT_TRUE(toml_float(get(root, "a")) == 0.5);
	toml_free(root);
}

TEST(strings)
{
	TomlValue *root = PARSE_OK("a = \"t\\tq\\\"b\\\\ \\u00E9\\U0001F600\"\n"
				   "b = 'C:\\raw\\'\n"
				   "c = \"\"\"\nline1\r\nline2 \\\n    joined\"\"\"\n"
				   "d = '''\n'quoted' ''x'''''\n"
				   "e = \"nul:\\u0000:\"\n");
	ASSERT_STREQ(toml_string(get(root, "a"), NULL), "t\tq\"b\\ \xC3\xA9\xF0\x9F\x98\x80");
	ASSERT_STREQ(toml_string(get(root, "b"), NULL), "C:\\raw\\");
	ASSERT_STREQ(toml_string(get(root, "c"), NULL), "line1\nline2 joined");
	ASSERT_STREQ(toml_string(get(root, "d"), NULL), "'quoted' ''x''");
	size_t len;
	const char *e = toml_string(get(root, "e"), &len);
	ASSERT_EQ(len, 6);
	ASSERT_TRUE(memcmp(e, "nul:\0:", 7) == 0);
	toml_free(root);

	PARSE_ERR("a = \"bad \\q\"", 1, 10, "invalid escape '\\q' in string");
	PARSE_ERR("a = \"\\uD800\"", 1, 6, "escape '\\uD800' is not a Unicode scalar value");
	PARSE_ERR("a = \"\\u12\"", 1, 6, "escape '\\u' needs exactly 4 hex digits");
	PARSE_ERR("a = \"open\nb = 1", 1, 10, "newline in a single-line string");
	PARSE_ERR("a = \"\"\"open\n", 1, 5, "unterminated string");
	PARSE_ERR("a = \"tab\tok, bell\a not\"", 1, 18, "control character U+0007");
	PARSE_ERR("a = \"\"\"x\"\"\"\"\"\"", 1, 9, "too many quotes");
	PARSE_ERR("a = '''x\r'''", 1, 9, "carriage return not followed by a newline");
}

TEST(arrays)
{
	TomlValue *root = PARSE_OK("a = [ 1, \"two\", [3.0], {x = 4}, ]\n"
				   "b = [\n  1, # one\n\n  2\n]\nc = []\n");
	const TomlValue *a = get(root, "a");
	ASSERT_EQ(toml_array_size(a), 4);
	ASSERT_EQ(toml_integer(toml_array_get(a, 0)), 1);
	ASSERT_STREQ(toml_string(toml_array_get(a, 1), NULL), "two");
	ASSERT_TRUE(toml_float(toml_array_get(toml_array_get(a, 2), 0)) == 3.0);
	ASSERT_EQ(toml_integer(get(toml_array_get(a, 3), "x")), 4);
	ASSERT_NULL(toml_array_get(a, 4));
	ASSERT_EQ(toml_array_size(get(root, "b")), 2);
	ASSERT_EQ(toml_array_size(get(root, "c")), 0);
	toml_free(root);

	PARSE_ERR("a = [1 2]", 1, 8, "expected ',' or ']' after array element, found '2'");
	PARSE_ERR("a = [1,,2]", 1, 8, "expected a value, found ','");
	PARSE_ERR("a = [1", 1, 7, "found end of input");
}

TEST(tables_and_order)
{
	TomlValue *root = PARSE_OK("zeta = 1\n"
				   "alpha = 2\n"
				   "[mid]\n"
				   "k = 3\n"
				   "[mid.sub]\n"
				   "[[list]]\n"
				   "n = 1\n"
				   "[[list]]\n"
				   "n = 2\n"
				   "[list.inner]\n"
				   "x = true\n");
	static const char *const order[] = { "zeta", "alpha", "mid", "list" };
	ASSERT_EQ(toml_table_size(root), 4);
	for (size_t i = 0; i < 4; i++)
		ASSERT_STREQ(toml_table_key(root, i, NULL), order[i]);
	ASSERT_NULL(toml_table_key(root, 4, NULL));
	ASSERT_NULL(toml_table_get(root, "nope", NULL));

	const TomlValue *list = get(root, "list");
	ASSERT_EQ(toml_type(list), TOML_ARRAY);
	ASSERT_EQ(toml_array_size(list), 2);
	ASSERT_EQ(toml_integer(get(toml_array_get(list, 1), "n")), 2);
	ASSERT_TRUE(toml_bool(get(get(toml_array_get(list, 1), "inner"), "x")));
	ASSERT_EQ(toml_table_size(get(get(root, "mid"), "sub")), 0);
	toml_free(root);
}

TEST(dotted_keys)
{
	TomlValue *root =
	    PARSE_OK("a.b.c = 1\na.b.d = 2\n\"x.y\".'z' = 3\n"
		     "[fruit]\napple.color = \"red\"\n[fruit.apple.texture]\nsmooth = true\n"
		     "[t.u.v]\n[t]\nu.w = 1\n");
	const TomlValue *b = get(get(root, "a"), "b");
	ASSERT_EQ(toml_table_size(b), 2);
	ASSERT_EQ(toml_integer(get(b, "d")), 2);
	ASSERT_EQ(toml_integer(get(get(root, "x.y"), "z")), 3);
	ASSERT_TRUE(toml_bool(get(get(get(get(root, "fruit"), "apple"), "texture"), "smooth")));
	ASSERT_EQ(toml_integer(get(get(get(root, "t"), "u"), "w")), 1);
	toml_free(root);
}

TEST(redefinition_rules)
{
	PARSE_ERR("port = 1\nname = 2\n\n\nport = 3", 5, 1,
		  "duplicate key \"port\" (first defined at 1:1)");
	PARSE_ERR("[a]\n[a]", 2, 2, "table \"a\" is already defined (first defined at 1:1)");
	PARSE_ERR("[a.b]\n[a]\n[a]", 3, 2, "table \"a\" is already defined (first defined at 2:1)");
	PARSE_ERR(
	    "[fruit]\napple.color = 1\n[fruit.apple]", 3, 8,
	    "cannot define table \"fruit.apple\": it is already a table defined by dotted keys");
	PARSE_ERR("a = {b = 1}\na.c = 2", 2, 1,
		  "\"a\" is already an inline table (defined at 1:5)");
	PARSE_ERR("a = {b = 1}\n[a.c]", 2, 2, "is already an inline table");
	PARSE_ERR("a = [{}]\n[[a]]", 2, 3,
		  "cannot define array of tables \"a\": it is already an array");
	PARSE_ERR("[[a]]\n[a]", 2, 2, "it is already an array of tables");
	PARSE_ERR("[a]\n[[a]]", 2, 3, "it is already a table");
	PARSE_ERR("[a.b.c]\n[a]\nb.c.d = 1", 3, 3,
		  "cannot set \"b.c.d\": table \"b.c\" has its own header at 1:1");
	PARSE_ERR("a = 1\n[a.b]", 2, 2, "cannot define table \"a.b\": \"a\" is already an integer");
	PARSE_ERR("a = {x = 1, x = 2}", 1, 13, "duplicate key \"x\" (first defined at 1:6)");
	PARSE_ERR("[[a.b]]\n[[a]]", 2, 3, "it is already a table");
	PARSE_ERR("a.b = 1\n[x]\n[a]", 3, 2, "already a table defined by dotted keys");
}

TEST(syntax_errors)
{
	PARSE_ERR("name \"x\"", 1, 6, "expected '=' after key \"name\", found '\"'");
	PARSE_ERR("a.b\n", 1, 4, "expected '=' after key \"a.b\", found end of line");
	PARSE_ERR("a =", 1, 4, "expected a value, found end of input");
	PARSE_ERR("a = 1 b = 2", 1, 7, "expected end of line after value, found 'b'");
	PARSE_ERR("[a] x", 1, 5, "expected end of line after table header, found 'x'");
	PARSE_ERR("[a", 1, 3, "expected ']' after table name \"a\", found end of input");
	PARSE_ERR("[[a]", 1, 4, "expected ']]' after table name \"a\", found ']'");
	PARSE_ERR("= 1", 1, 1, "expected a key, found '='");
	PARSE_ERR("\"\"\"k\"\"\" = 1", 1, 1, "a key cannot be a multi-line string");
	PARSE_ERR("t = {a = 1,}", 1, 12, "trailing comma in an inline table");
	PARSE_ERR("t = {a = 1\n}", 1, 11, "an inline table must be on one line");
	PARSE_ERR("a = 1\rb = 2", 1, 6, "carriage return not followed by a newline");
	PARSE_ERR("# bell \a", 1, 8, "control character U+0007 is not allowed in a comment");
	PARSE_ERR("a = true1", 1, 5, "expected a value, found \"true1\"");
	PARSE_ERR("a = 2021-02-29", 1, 5, "invalid date \"2021-02-29\": day out of range");
	PARSE_ERR("a = 2024-02-30T00:00:00", 1, 5, "day out of range for the month");
	PARSE_ERR("a = 1979-05-27T25:00:00", 1, 5, "hour must be 00 to 23");
	PARSE_ERR("a = 1979-05-27T07:32:00+24:00", 1, 5, "offset out of range");
	PARSE_ERR("a = 07:32", 1, 5, "invalid local time \"07:32\" (expected HH:MM:SS");
	PARSE_ERR("a = 1979-05-27T", 1, 5, "invalid date-time");

	TomlValue *root = PARSE_OK("leap = 2024-02-29\ncentury = 2000-02-29\nsecond = 23:59:60\n");
	toml_free(root);
	PARSE_ERR("a = 1900-02-29", 1, 5, "day out of range");
}

TEST(positions_count_code_points)
{
	/* "é" and "日本" are one column per character whatever their UTF-8 length. */
	PARSE_ERR("\"é日本\" = 1 x", 1, 11, "expected end of line after value");
	PARSE_ERR("a = 1\r\n\r\nb = \"\\z\"", 3, 6, "invalid escape '\\z'");
	PARSE_ERR("\xEF\xBB\xBFk = ?", 1, 5, "expected a value, found '?'");
	PARSE_ERR("k = \"\xC3\x28\"", 1, 6, "invalid UTF-8 byte 0xC3");
	PARSE_ERR("k = \"\xED\xA0\x80\"", 1, 6, "invalid UTF-8"); /* encoded surrogate */
	PARSE_ERR("k = \"\xC0\xAF\"", 1, 6, "invalid UTF-8");     /* overlong */

	TomlValue *root = PARSE_OK("\n  [t]\n\t\"ключ\" = { x = [1, 2] }\n");
	TomlPos pos;
	const TomlValue *t = toml_table_get(root, "t", &pos);
	ASSERT_EQ(pos.line, 2);
	ASSERT_EQ(pos.col, 4);
	ASSERT_EQ(toml_pos(t).line, 2);
	ASSERT_EQ(toml_pos(t).col, 3);
	const TomlValue *v = toml_table_get(t, "ключ", &pos);
	ASSERT_EQ(pos.line, 3);
	ASSERT_EQ(pos.col, 2);
	ASSERT_EQ(toml_pos(v).col, 11);
	ASSERT_EQ(toml_pos(toml_array_get(get(v, "x"), 1)).col, 21);
	toml_free(root);
}

TEST(error_format)
{
	TomlError err = {};
	TomlValue *root = NULL;
	ASSERT_ERR(toml_parse("a = 1\nb = 2\nc = \"\\q\"", 21, NULL, &root, &err), EINVAL);
	char buf[300];
	toml_error_format(&err, "locald.toml", buf, sizeof(buf));
	ASSERT_STREQ(buf, "locald.toml:3:6: invalid escape '\\q' in string");
	toml_error_format(&err, NULL, buf, sizeof(buf));
	ASSERT_STREQ(buf, "3:6: invalid escape '\\q' in string");
	char small[10];
	toml_error_format(&err, "locald.toml", small, sizeof(small));
	ASSERT_STREQ(small, "locald.to");

	/* A key with control characters and great length still gives one short line. */
	Buf doc = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&doc, "\"\\n"));
	for (int i = 0; i < 500; i++)
		ASSERT_OK(buf_append_str(&doc, "k"));
	ASSERT_OK(buf_append_str(&doc, "\" 1"));
	ASSERT_ERR(toml_parse(doc.data, doc.len, NULL, &root, &err), EINVAL);
	ASSERT_STRCONTAINS(err.message, "expected '=' after key \"\\u000Akkk");
	ASSERT_STRCONTAINS(err.message, "...\", found '1'");
	ASSERT_TRUE(strlen(err.message) < 160);
	buf_done(&doc);
}

TEST(type_names)
{
	ASSERT_STREQ(toml_type_to_string(TOML_STRING), "string");
	ASSERT_STREQ(toml_type_to_string(TOML_BOOL), "boolean");
	ASSERT_STREQ(toml_type_to_string(TOML_DATETIME), "offset date-time");
	ASSERT_STREQ(toml_type_to_string(TOML_TABLE), "table");
	ASSERT_NULL(toml_type_to_string(_TOML_TYPE_MAX));
	ASSERT_NULL(toml_type_to_string(_TOML_TYPE_INVALID));
	ASSERT_EQ(toml_type(NULL), _TOML_TYPE_INVALID);
}

TEST(keys_with_nul)
{
	TomlValue *root = PARSE_OK("\"a\\u0000b\" = 1\n\"a\" = 2\n");
	size_t len;
	const char *k = toml_table_key_n(root, 0, &len, NULL);
	ASSERT_EQ(len, 3);
	ASSERT_TRUE(memcmp(k, "a\0b", 4) == 0);
	ASSERT_EQ(toml_integer(toml_table_get_n(root, "a\0b", 3, NULL)), 1);
	ASSERT_EQ(toml_integer(toml_table_get(root, "a", NULL)), 2);
	toml_free(root);
	PARSE_ERR("\"a\\u0000b\" = 1\n\"a\\u0000b\" = 2", 2, 1, "duplicate key \"a\\u0000b\"");
}

TEST(many_keys)
{
	/* Order kept and lookups right across many tree rotations. */
	Buf doc = BUF_INIT(0);
	for (int i = 0; i < 20000; i++)
		ASSERT_OK(buf_printf(&doc, "k%d = %d\n", (i * 7919) % 20000, i));
	TomlValue *root = NULL;
	ASSERT_OK(toml_parse(doc.data, doc.len, NULL, &root, NULL));
	ASSERT_EQ(toml_table_size(root), 20000);
	for (int i = 0; i < 20000; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", (i * 7919) % 20000);
		ASSERT_STREQ(toml_table_key(root, (size_t)i, NULL), key);
		ASSERT_EQ(toml_integer(get(root, key)), i);
	}
	toml_free(root);
	ASSERT_OK(buf_append_str(&doc, "k19999 = 0\n"));
	ASSERT_ERR(toml_parse(doc.data, doc.len, NULL, &root, NULL), EINVAL);
	buf_done(&doc);
}

TEST(limit_depth)
{
	TomlLimits l = { .max_depth = 4 };
	TomlValue *root = NULL;
	ASSERT_OK(toml_parse("a = [[[[1]]]]", 13, &l, &root, NULL));
	toml_free(root);
	ASSERT_OK(toml_parse("a.b.c.d.e = 1", 13, &l, &root, NULL));
	toml_free(root);
	PARSE_LIMIT("a = [[[[[1]]]]]", &l, 1, 9, "nesting deeper than 4 levels");
	PARSE_LIMIT("a = {b = {c = {d = {e = {}}}}}", &l, 1, 25, "nesting deeper than 4 levels");
	PARSE_LIMIT("a.b.c.d.e.f = 1", &l, 1, 11, "key nested deeper than 4 levels");
	PARSE_LIMIT("[a.b.c]\nd.e.f = 1", &l, 2, 3, "nesting deeper than 4 levels");
	PARSE_LIMIT("[a.b.c.d.e]", &l, 1, 10, "nesting deeper than 4 levels");
	PARSE_LIMIT("[[a.b.c.d]]", &l, 1, 1, "nesting deeper than 4 levels");
	PARSE_LIMIT("[a.b]\nc.d = [[1]]", &l, 2, 8, "nesting deeper than 4 levels");

	/* Default and hard limits: deep hostile nesting fails fast, without deep recursion. */
	Buf doc = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&doc, "a = "));
	for (int i = 0; i < 100000; i++)
		ASSERT_OK(buf_append_str(&doc, "["));
	parse_err_at(__FILE__, __LINE__, doc.data, doc.len, NULL, -E2BIG, 1, 133,
		     "nesting deeper than 128 levels");
	TomlLimits huge = { .max_depth = UINT32_MAX };
	parse_err_at(__FILE__, __LINE__, doc.data, doc.len, &huge, -E2BIG, 1, 517,
		     "nesting deeper than 512 levels");
	buf_clear(&doc);
	for (int i = 0; i < 100000; i++)
		ASSERT_OK(buf_append_str(&doc, "a."));
	ASSERT_OK(buf_append_str(&doc, "a = 1"));
	parse_err_at(__FILE__, __LINE__, doc.data, doc.len, NULL, -E2BIG, 1, 259,
		     "key nested deeper than 128 levels");
	buf_done(&doc);
}

TEST(limit_size_string_keys)
{
	TomlLimits l = { .max_input = 8 };
	PARSE_LIMIT("a = 12345", &l, 1, 1, "document larger than 8 bytes");
	TomlValue *root = NULL;
	ASSERT_OK(toml_parse("a = 1234", 8, &l, &root, NULL));
	toml_free(root);

	l = (TomlLimits){ .max_string = 4 };
	ASSERT_OK(toml_parse("a = \"abcd\"", 10, &l, &root, NULL));
	toml_free(root);
	PARSE_LIMIT("a = \"abcde\"", &l, 1, 5, "string longer than 4 bytes");
	PARSE_LIMIT("a = '''\nab\ncde'''", &l, 1, 5, "string longer than 4 bytes");
	PARSE_LIMIT("abcde = 1", &l, 1, 1, "string longer than 4 bytes");

	l = (TomlLimits){ .max_keys = 3 };
	ASSERT_OK(toml_parse("a = 1\nb = 2\nc = 3", 17, &l, &root, NULL));
	toml_free(root);
	PARSE_LIMIT("a = 1\nb = 2\nc = 3\nd = 4", &l, 4, 1, "more than 3 keys");
	/* Implicit tables are keys too. */
	PARSE_LIMIT("[x.y.z]\nw = 1", &l, 2, 1, "more than 3 keys");
}

TEST(error_optional)
{
	TomlValue *root = NULL;
	ASSERT_ERR(toml_parse("=", 1, NULL, &root, NULL), EINVAL);
	ASSERT_NULL(root);
}

TEST_MAIN();
