/* SPDX-License-Identifier: MIT */
/*
 * The .dockerignore matcher against Docker's documented cases
 * (docs.docker.com "Build context" → .dockerignore files, and the moby/patternmatcher
 * tests they describe), plus the hidden-directory rule fsd adds on top.
 */

#include "fsd-ignore.h"
#include "test.h"

typedef struct Case {
	const char *lines; /* the .dockerignore text */
	const char *path;
	bool excluded;
} Case;

static const Case cases[] = {
	/* The documentation's example file. */
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temporary.txt", true },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temp", true },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/subdir/temporary.txt", true },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempa", true },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempb", true },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temporary.txt", false },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempab", false },
	{ "# comment\n*/temp*\n*/*/temp*\ntemp?\n", "a/b/c/temp", false },
	{ "# comment\n", "comment", false },
	/* "**" matches any number of directories, including zero. */
	{ "**/*.go\n", "main.go", true },
	{ "**/*.go\n", "a/b/c/main.go", true },
	{ "**/*.go\n", "a/b/main.c", false },
	{ "a/**/b\n", "a/b", true },
	{ "a/**/b\n", "a/x/y/b", true },
	{ "a/**/b\n", "a/x/y/b/c", true }, /* through the parent */
	{ "a/**\n", "a/anything/at/all", true },
	{ "**\n", "x/y", true },
	/* Exceptions: the last matching line wins. */
	{ "*.md\n!README.md\n", "README.md", false },
	{ "*.md\n!README.md\n", "CHANGES.md", true },
	{ "*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", true },
	{ "*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", false },
	{ "*.md\nREADME-secret.md\n!README*.md\n", "README-secret.md", false },
	{ "*.md\n!README.md\n", "docs/x.md", false }, /* '*' does not cross '/' */
	/* A pattern matches a directory and so everything under it. */
	{ "node_modules\n", "node_modules", true },
	{ "node_modules\n", "node_modules/x/y.js", true },
	{ "node_modules\n", "src/node_modules", false },
	{ "**/node_modules\n", "src/node_modules/a", true },
	{ "dir\n!dir/keep\n", "dir/keep", false },
	{ "dir\n!dir/keep\n", "dir/other", true },
	{ "dir\n!dir/keep\n", "dir/keep/deeper", false },
	/* Leading '/' and cleaning (filepath.Clean). */
	{ "/build\n", "build/out.o", true },
	{ "./build/\n", "build", true },
	{ "a//b/../c\n", "a/c", true },
	{ "a//b/../c\n", "a/b", false },
	/* Surrounding white space is trimmed; '#' only starts a comment in column 1. */
	{ "  secret.txt  \n", "secret.txt", true },
	{ "\tsecret.txt\r\n", "secret.txt", true },
	{ " #notacomment\n", "#notacomment", true },
	{ "! keep\nkeep\n", "keep", true },
	/* '?', classes and escapes. */
	{ "file?.txt\n", "file1.txt", true },
	{ "file?.txt\n", "file/.txt", false },
	{ "file[0-9].txt\n", "file7.txt", true },
	{ "file[0-9].txt\n", "filex.txt", false },
	{ "file[^0-9].txt\n", "filex.txt", true },
	{ "\\*star\n", "*star", true },
	{ "\\*star\n", "xstar", false },
	{ "*\n", "anything", true },
	{ "*\n", "dir/below", true }, /* through the parent "dir" */
	{ "*\n!*.go\n", "main.go", false },
	/* BOM on the first line. */
	{ "\xef\xbb\xbf"
	  "bom\n",
	  "bom", true },
	/* Empty pattern set. */
	{ "", "x", false },
	{ "\n\n   \n", "x", false },
};

TEST(documented_cases)
{
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_(ignore_freep) Ignore *ig = NULL;
		ASSERT_OK(ignore_new(&ig));
		ASSERT_OK(ignore_add_text(ig, cases[i].lines, strlen(cases[i].lines), NULL));
		bool got = ignore_match(ig, cases[i].path);
		if (got != cases[i].excluded)
			test_fail(__FILE__, __LINE__,
				  "case %zu: patterns \"%s\" path \"%s\": got %s", i,
				  cases[i].lines, cases[i].path, got ? "excluded" : "included");
	}
}

TEST(hidden_directories_keep_paths_to_exceptions)
{
	_cleanup_(ignore_freep) Ignore *ig = NULL;
	ASSERT_OK(ignore_new(&ig));
	const char *t = "dir\n!dir/keep\nsecret\n*.log\n!important.log\n";
	ASSERT_OK(ignore_add_text(ig, t, strlen(t), NULL));
	ASSERT_FALSE(ignore_hidden(ig, "dir", true)); /* an exception may match beneath */
	ASSERT_TRUE(ignore_hidden(ig, "dir/other", true));
	ASSERT_FALSE(ignore_hidden(ig, "dir/keep", false));
	ASSERT_TRUE(ignore_hidden(ig, "secret", true));
	ASSERT_TRUE(ignore_hidden(ig, "secret", false));
	ASSERT_TRUE(ignore_hidden(ig, "a.log", false));
	ASSERT_FALSE(ignore_hidden(ig, "important.log", false));
	ASSERT_FALSE(ignore_hidden(ig, "src", true));
}

TEST(bad_patterns_are_refused_with_their_line)
{
	_cleanup_(ignore_freep) Ignore *ig = NULL;
	ASSERT_OK(ignore_new(&ig));
	unsigned line = 0;
	const char *t = "ok\n!\n";
	ASSERT_EQ(ignore_add_text(ig, t, strlen(t), &line), -EINVAL);
	ASSERT_EQ(line, 2u);
	t = "a\n[unclosed\n";
	ASSERT_EQ(ignore_add_text(ig, t, strlen(t), &line), -EINVAL);
	ASSERT_EQ(line, 2u);
	t = "[z-a]\n";
	ASSERT_EQ(ignore_add_text(ig, t, strlen(t), &line), -EINVAL);
}

TEST(limits)
{
	_cleanup_(ignore_freep) Ignore *ig = NULL;
	ASSERT_OK(ignore_new(&ig));
	char *big = malloc(IGNORE_PATTERN_LEN_MAX + 10);
	ASSERT_TRUE(big);
	memset(big, 'a', IGNORE_PATTERN_LEN_MAX + 9);
	big[IGNORE_PATTERN_LEN_MAX + 9] = 0;
	ASSERT_EQ(ignore_add_pattern(ig, big), -E2BIG);
	ASSERT_EQ(ignore_add_text(ig, big, IGNORE_TEXT_MAX + 1, NULL), -E2BIG);
	free(big);
	/* many stars against a long path: the memo keeps it linear */
	ASSERT_OK(ignore_add_pattern(ig, "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"));
	char path[3000];
	memset(path, 'a', sizeof path - 1);
	path[sizeof path - 1] = 0;
	ASSERT_FALSE(ignore_match(ig, path));
}

TEST(path_clean)
{
	static const char *in[] = {
		"", "a/b/", "/../a", "a/./b", "a/../../b", "//x//y", ".", "./"
	};
	static const char *out[] = { ".", "a/b", "/a", "a/b", "../b", "/x/y", ".", "." };
	for (size_t i = 0; i < ELEMENTSOF(in); i++) {
		char buf[64];
		snprintf(buf, sizeof buf, "%s", in[i]);
		ignore_path_clean(buf);
		if (strcmp(buf, out[i]) != 0)
			test_fail(__FILE__, __LINE__, "clean(\"%s\") = \"%s\", want \"%s\"", in[i],
				  buf, out[i]);
	}
}

TEST_MAIN();
