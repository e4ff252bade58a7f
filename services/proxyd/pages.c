/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "macro.h"
#include "http1.h"
#include "pages.h"
#include "strutil.h"

/* A page is small; these bound what a route's strings can make us build. */
#define PAGE_BODY_MAX (1024u * 1024u)
#define PAGE_VALUE_MAX 512u /* bytes shown of a name, state or reason */
#define PAGE_LINE_MAX 2048u /* bytes shown of one log line */
#define PAGE_LINES_MAX 20u
#define PAGE_HOSTS_MAX 500u

#define HTML_TYPE "text/html; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* Every extra field is owned by the Page, so page_done() can free them all. */
void page_done(Page *p)
{
	if (!p)
		return;
	free(p->body);
	for (size_t i = 0; i < p->n_extra && i < ELEMENTSOF(p->extra_name); i++) {
		free(p->extra_name[i]);
		free(p->extra_value[i]);
	}
	*p = (Page){ 0 };
}

static void page_donep(Page *p)
{
	page_done(p);
}

static int page_add_extra(Page *p, const char *name, const char *value)
{
	if (p->n_extra >= ELEMENTSOF(p->extra_name))
		return -ENOBUFS;
	_cleanup_free_ char *n = strdup(name), *v = strdup(value);
	if (!n || !v)
		return -ENOMEM;
	p->extra_name[p->n_extra] = TAKE_PTR(n);
	p->extra_value[p->n_extra] = TAKE_PTR(v);
	p->n_extra++;
	return 0;
}

/* The media range text/html is acceptable (q > 0) in an Accept field. */
bool page_wants_html(const char *accept)
{
	if (!accept)
		return false;
	const char *p = accept;
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *item = p, *end = p + n;
		p = *end ? end + 1 : end;
		while (item < end && (*item == ' ' || *item == '\t'))
			item++;
		size_t tlen = strcspn(item, ";, \t");
		if (item + tlen > end || tlen != STRLEN("text/html") ||
		    strncasecmp(item, "text/html", tlen) != 0)
			continue;
		/* Parameters: only q=0 (q=0.0, q=0.000) says "not acceptable". */
		bool refused = false;
		for (const char *q = item + tlen; q < end; q++) {
			if (*q != ';')
				continue;
			q++;
			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			if (end - q >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
				const char *v = q + 2;
				refused = v < end && *v == '0';
				for (v++; refused && v < end && *v != ';' && *v != ' '; v++)
					refused = *v == '.' || *v == '0';
			}
		}
		if (!refused)
			return true;
	}
	return false;
}

/*
 * Text made safe to show: valid UTF-8, terminal escape sequences (CSI, OSC, DCS, and
 * their 8-bit C1 forms) and other control characters removed, a tab kept only where
 * `keep_tab` (log lines), at most `max` bytes cut at a character boundary ("…" added),
 * then HTML-escaped if `html`.
 */
static int append_text(Buf *out, const char *s, size_t max, bool keep_tab, bool html)
{
	_cleanup_buf_ Buf u = BUF_INIT(0), clean = BUF_INIT(0);
	int r;

	if (!s)
		return 0;
	size_t n = strnlen(s, (size_t)max * 8 + 64);
	r = utf8_sanitize(s, n, &u);
	if (r < 0)
		return r;
	r = buf_reserve(&clean, MIN(u.len, (size_t)max) + 4);
	if (r < 0)
		return r;

	const unsigned char *d = (const unsigned char *)(u.data ? u.data : "");
	size_t i = 0, len = u.len;
	bool cut = false;
	while (i < len) {
		unsigned char c = d[i];
		bool csi = false, str = false;

		if (c == 0x1b && i + 1 < len) {
			unsigned char e = d[i + 1];
			i += 2;
			if (e == '[')
				csi = true;
			else if (e == ']' || e == 'P' || e == 'X' || e == '^' || e == '_')
				str = true;
			else if (e >= 0x80) {
				i--; /* a lone ESC before a non-ASCII character */
				continue;
			} else {
				/* ESC, intermediates, one final byte (e.g. "ESC ( B"). */
				if (e >= 0x20 && e <= 0x2f) {
					while (i < len && d[i] >= 0x20 && d[i] <= 0x2f)
						i++;
					if (i < len && d[i] >= 0x30 && d[i] <= 0x7e)
						i++;
				}
				continue;
			}
		} else if (c == 0xc2 && i + 1 < len && d[i + 1] >= 0x80 && d[i + 1] <= 0x9f) {
			/* C1 controls, as UTF-8: U+009B is CSI, U+009D OSC, U+0090 DCS. */
			unsigned char e = d[i + 1];
			i += 2;
			csi = e == 0x9b;
			str = e == 0x9d || e == 0x90 || e == 0x98 || e == 0x9e || e == 0x9f;
			if (!csi && !str)
				continue;
		}
		if (csi) {
			while (i < len && d[i] >= 0x20 && d[i] <= 0x3f)
				i++;
			if (i < len && d[i] >= 0x40 && d[i] <= 0x7e)
				i++;
			continue;
		}
		if (str) {
			/* Up to BEL or ST (ESC \ or U+009C). */
			while (i < len) {
				if (d[i] == 0x07) {
					i++;
					break;
				}
				if (d[i] == 0x1b && i + 1 < len && d[i + 1] == '\\') {
					i += 2;
					break;
				}
				if (d[i] == 0xc2 && i + 1 < len && d[i + 1] == 0x9c) {
					i += 2;
					break;
				}
				i++;
			}
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			i++;
			if (c == '\t' || (c == '\n' && !keep_tab)) {
				r = buf_append_byte(&clean, keep_tab ? c : ' ');
				if (r < 0)
					return r;
			}
			continue;
		}

		size_t clen = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (clen > len - i)
			clen = len - i;
		if (clean.len + clen > max) {
			cut = true;
			break;
		}
		r = buf_append(&clean, d + i, clen);
		if (r < 0)
			return r;
		i += clen;
	}
	if (cut) {
		r = buf_append_str(&clean, "\xe2\x80\xa6");
		if (r < 0)
			return r;
	}

	if (!html)
		return buf_append(out, clean.data ? clean.data : "", clean.len);
	for (size_t k = 0; k < clean.len; k++) {
		const char *esc = NULL;
		switch (clean.data[k]) {
		case '&':
			esc = "&amp;";
			break;
		case '<':
			esc = "&lt;";
			break;
		case '>':
			esc = "&gt;";
			break;
		case '"':
			esc = "&quot;";
			break;
		case '\'':
			esc = "&#39;";
			break;
		}
		r = esc ? buf_append_str(out, esc) : buf_append_byte(out, (uint8_t)clean.data[k]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int append_value(Buf *out, const char *s, bool html)
{
	return append_text(out, s, PAGE_VALUE_MAX, false, html);
}

static const char *const page_css =
    ":root{color-scheme:light dark;--bg:#f5f6f8;--card:#fff;--fg:#1c2128;--muted:#5c6570;"
    "--line:#e2e5e9;--soft:#f0f2f4;--log-bg:#f7f8fa;--log-fg:#24292f;--accent:#5c6570}"
    ".wait{--accent:#2f6fdb}.error{--accent:#c9302c}.warn{--accent:#b7791f}"
    ".info{--accent:#2f6fdb}"
    "@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--card:#161b22;--fg:#e4e8ed;"
    "--muted:#8b949e;--line:#2b323b;--soft:#1f252d;--log-bg:#0b0e13;--log-fg:#c9d1d9}"
    ".wait,.info{--accent:#5b9cf5}.error{--accent:#f0625d}.warn{--accent:#d9a441}}"
    "*{box-sizing:border-box}"
    "html{background:var(--bg)}"
    "body{margin:0;padding:9vh 20px 40px;color:var(--fg);background:var(--bg);"
    "font:15px/1.55 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\","
    "\"Noto Sans\",\"Liberation Sans\",Arial,sans-serif;-webkit-font-smoothing:antialiased}"
    "main{max-width:800px;margin:0 auto;background:var(--card);border:1px solid var(--line);"
    "border-top:3px solid var(--accent);border-radius:10px;padding:26px 30px 28px;"
    "box-shadow:0 1px 2px rgba(0,0,0,.04)}"
    "header{display:flex;justify-content:space-between;align-items:center;gap:12px;"
    "font-size:13px;color:var(--muted);margin-bottom:16px}"
    ".brand{font-weight:600;letter-spacing:.03em}"
    ".badge{color:var(--accent);border:1px solid currentColor;border-radius:999px;"
    "padding:0 10px;font-weight:500;white-space:nowrap;font-variant-numeric:tabular-nums}"
    "h1{font-size:22px;line-height:1.3;font-weight:600;margin:0 0 6px;display:flex;"
    "align-items:center;gap:12px;overflow-wrap:anywhere}"
    ".lead{margin:0 0 18px;color:var(--muted);overflow-wrap:anywhere}.lead:last-child{margin:0}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 20px;margin:0 0 8px;"
    "font-size:14px}"
    "dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}"
    "h2{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;"
    "letter-spacing:.07em;margin:22px 0 8px}"
    "pre,code,.hosts a{font-family:ui-monospace,SFMono-Regular,\"SF Mono\",Menlo,Consolas,"
    "\"DejaVu Sans Mono\",\"Liberation Mono\",monospace}"
    "pre{margin:0;padding:12px 14px;background:var(--log-bg);color:var(--log-fg);"
    "border:1px solid var(--line);border-radius:8px;font-size:12.5px;line-height:1.5;"
    "white-space:pre-wrap;overflow-wrap:anywhere;tab-size:4;max-height:55vh;overflow:auto}"
    "code{font-size:13px;background:var(--soft);border-radius:5px;padding:1px 6px}"
    ".hint{margin:20px 0 0;font-size:14px;color:var(--muted)}"
    ".empty{color:var(--muted);font-style:italic;margin:0}"
    ".hosts{list-style:none;margin:0;padding:0;border:1px solid var(--line);border-radius:8px;"
    "overflow:hidden}"
    ".hosts li+li{border-top:1px solid var(--line)}"
    ".hosts a{display:block;padding:9px 14px;color:var(--accent);text-decoration:none;"
    "font-size:14px;overflow-wrap:anywhere}"
    ".hosts a:hover,.hosts a:focus{background:var(--soft)}"
    ".pulse{flex:none;width:10px;height:10px;border-radius:50%;background:var(--accent);"
    "animation:pulse 1s ease-in-out infinite}"
    "@keyframes pulse{0%,100%{opacity:.25}50%{opacity:1}}"
    "@media (prefers-reduced-motion:reduce){.pulse{animation:none}}"
    "footer{max-width:800px;margin:14px auto 0;font-size:12px;color:var(--muted);"
    "text-align:center}"
    "@media (max-width:560px){body{padding-top:16px}main{padding:20px 18px}"
    "dl{grid-template-columns:1fr;gap:0}dd{margin-bottom:6px}}";

typedef enum PageTone {
	TONE_WAIT,
	TONE_ERROR,
	TONE_WARN,
	TONE_INFO,
} PageTone;

static const char *tone_class(PageTone t)
{
	switch (t) {
	case TONE_WAIT:
		return "wait";
	case TONE_ERROR:
		return "error";
	case TONE_WARN:
		return "warn";
	default:
		return "info";
	}
}

/* <head> and the card's header; `title_pre`+`title_value` form the document title. */
static int html_begin(Buf *b, PageTone tone, bool refresh, const char *title_pre,
		      const char *title_value, const char *badge)
{
	int r = buf_append_str(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n"
				  "<meta charset=\"utf-8\">\n"
				  "<meta name=\"viewport\" content=\"width=device-width, "
				  "initial-scale=1\">\n"
				  "<meta name=\"color-scheme\" content=\"light dark\">\n"
				  "<meta name=\"robots\" content=\"noindex\">\n");
	if (r >= 0 && refresh)
		r = buf_append_str(b, "<meta http-equiv=\"refresh\" content=\"1\">\n");
	if (r >= 0)
		r = buf_append_str(b, "<title>");
	if (r >= 0)
		r = buf_append_str(b, title_pre);
	if (r >= 0)
		r = append_value(b, title_value, true);
	if (r >= 0)
		r = buf_printf(b,
			       " \xc2\xb7 locald</title>\n<style>%s</style>\n</head>\n"
			       "<body>\n<main class=\"%s\">\n<header><span class=\"brand\">"
			       "locald</span><span class=\"badge\">%s</span></header>\n",
			       page_css, tone_class(tone), badge);
	return r < 0 ? r : 0;
}

static int html_end(Buf *b, const char *footer)
{
	int r = buf_append_str(b, "</main>\n");
	if (r >= 0 && footer)
		r = buf_printf(b, "<footer>%s</footer>\n", footer);
	if (r >= 0)
		r = buf_append_str(b, "</body>\n</html>\n");
	return r < 0 ? r : 0;
}

/* A definition list row (HTML) or "label: value" line (text); skipped when value is empty. */
static int append_field(Buf *b, const char *label, const char *value, bool html)
{
	int r;
	if (isempty(value))
		return 0;
	r = buf_printf(b, html ? "<dt>%s</dt><dd>" : "%s: ", label);
	if (r >= 0)
		r = append_value(b, value, html);
	if (r >= 0)
		r = buf_append_str(b, html ? "</dd>\n" : "\n");
	return r < 0 ? r : 0;
}

static int append_log(Buf *b, char *const *lines, bool html)
{
	size_t n = strv_length(lines), first = n > PAGE_LINES_MAX ? n - PAGE_LINES_MAX : 0;
	int r;

	if (html) {
		r = buf_append_str(b, "<h2>Last log lines</h2>\n");
		if (r < 0)
			return r;
		if (n == 0)
			return MIN(buf_append_str(b, "<p class=\"empty\">No output yet.</p>\n"), 0);
		r = buf_append_str(b, "<pre>");
		for (size_t i = first; r >= 0 && i < n; i++) {
			r = append_text(b, lines[i], PAGE_LINE_MAX, true, true);
			if (r >= 0)
				r = buf_append_byte(b, '\n');
		}
		if (r >= 0)
			r = buf_append_str(b, "</pre>\n");
		return r < 0 ? r : 0;
	}

	if (n == 0)
		return 0;
	r = buf_append_str(b, "\nlast log lines:\n");
	for (size_t i = first; r >= 0 && i < n; i++) {
		r = buf_append_str(b, "  ");
		if (r >= 0)
			r = append_text(b, lines[i], PAGE_LINE_MAX, true, false);
		if (r >= 0)
			r = buf_append_byte(b, '\n');
	}
	return r < 0 ? r : 0;
}

/* What a user types to see more: "shop:web" when both are known. */
static int append_service_ref(Buf *b, const Route *route, bool html)
{
	int r = 0;
	if (route->project) {
		r = append_value(b, route->project, html);
		if (r >= 0)
			r = buf_append_byte(b, ':');
	}
	if (r >= 0)
		r = append_value(b, route->service, html);
	return r < 0 ? r : 0;
}

static const char *route_name(const Route *route)
{
	if (!isempty(route->service))
		return route->service;
	if (!isempty(route->host))
		return route->host;
	return "service";
}

static int page_finish(Buf *b, int status, bool html, Page *ret)
{
	size_t len;
	char *body = buf_steal(b, &len);
	if (!body)
		return -ENOMEM;
	*ret = (Page){
		.status = status,
		.content_type = html ? HTML_TYPE : TEXT_TYPE,
		.body = body,
		.body_len = len,
	};
	/* proxyd's own pages describe a moment: never cached */
	int r = page_add_extra(ret, "Cache-Control", "no-store");
	if (r < 0)
		page_done(ret);
	return r;
}

static const char *status_phrase(int status)
{
	const char *phrase = http_status_reason(status);
	if (!streq(phrase, "Unknown"))
		return phrase;
	return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Error";
}

/* What a person should take from a status when the proxy gave no detail. */
static const char *status_explanation(int status)
{
	switch (status) {
	case 400:
		return "The request was malformed, so the proxy did not forward it.";
	case 405:
		return "This method is not allowed here.";
	case 408:
		return "The request took too long to arrive.";
	case 413:
		return "The request body is larger than the proxy accepts.";
	case 414:
		return "The request target is longer than the proxy accepts.";
	case 431:
		return "The request's header fields are larger than the proxy accepts.";
	case 500:
		return "Something went wrong inside the proxy.";
	case 503:
		return "The proxy cannot serve this request right now.";
	default:
		return status >= 500 ? "The proxy could not complete this request."
				     : "The proxy could not handle this request.";
	}
}

int page_starting(const Route *route, bool html, Page *ret)
{
	_cleanup_buf_ Buf b = BUF_INIT(PAGE_BODY_MAX);
	_cleanup_(page_donep) Page p = { 0 };
	const char *name = route_name(route);
	int r;

	if (html) {
		r = html_begin(&b, TONE_WAIT, true, "Starting ", name, "503 \xc2\xb7 starting");
		if (r >= 0)
			r = buf_append_str(&b, "<h1><span class=\"pulse\"></span><span>Starting ");
		if (r >= 0)
			r = append_value(&b, name, true);
		if (r >= 0)
			r = buf_append_str(&b, "\xe2\x80\xa6</span></h1>\n<p class=\"lead\">");
		if (r >= 0)
			r = buf_append_str(&b, "This page reloads by itself and shows ");
		if (r >= 0)
			r = append_value(&b, name, true);
		if (r >= 0)
			r = buf_append_str(&b, " as soon as it is ready.</p>\n<dl>\n");
		if (r >= 0)
			r = append_field(&b, "Project", route->project, true);
		if (r >= 0)
			r = append_field(&b, "State", route->state ? route->state : "starting",
					 true);
		if (r >= 0)
			r = append_field(&b, "Reason", route->reason, true);
		if (r >= 0)
			r = append_field(&b, "Host", route->host, true);
		if (r >= 0)
			r = buf_append_str(&b, "</dl>\n");
		if (r >= 0)
			r = append_log(&b, route->last_lines, true);
		if (r >= 0)
			r = html_end(&b, "Refreshing every second.");
	} else {
		r = buf_append_str(&b, "starting ");
		if (r >= 0)
			r = append_value(&b, name, false);
		if (r >= 0 && route->project) {
			r = buf_append_str(&b, " (project ");
			if (r >= 0)
				r = append_value(&b, route->project, false);
			if (r >= 0)
				r = buf_append_byte(&b, ')');
		}
		if (r >= 0)
			r = buf_append_str(&b, "; retry in a moment\n");
		if (r >= 0)
			r = append_field(&b, "state", route->state ? route->state : "starting",
					 false);
		if (r >= 0)
			r = append_field(&b, "reason", route->reason, false);
		if (r >= 0)
			r = append_log(&b, route->last_lines, false);
	}
	if (r < 0)
		return r;
	r = page_finish(&b, 503, html, &p);
	if (r >= 0)
		r = page_add_extra(&p, "Refresh", "1");
	if (r >= 0)
		r = page_add_extra(&p, "Retry-After", "1");
	if (r < 0)
		return r;
	*ret = p;
	p = (Page){ 0 };
	return 0;
}

/* The headline of a 502: what happened, in the service's terms. */
static const char *down_headline(const Route *route, const char *detail)
{
	const char *s = route->state;
	if (s && (streq(s, "failed") || streq(s, "crashed") || streq(s, "backoff") ||
		  streq(s, "exited")))
		return route->last_exit ? " crashed" : " stopped";
	if (s && streq(s, "blocked"))
		return " is blocked";
	if (s && (streq(s, "stopped") || streq(s, "stopping")))
		return " is not running";
	if (detail || route->readiness == ROUTE_READY)
		return " is not answering";
	return " is not available";
}

static const char *down_explanation(int status, const char *headline)
{
	if (status == 504)
		return "The proxy stopped waiting for it.";
	if (streq(headline, " is blocked"))
		return "It waits for a service it depends on.";
	if (streq(headline, " is not answering"))
		return "The proxy could not reach it.";
	return "It is not running, so there is nothing to forward this request to.";
}

static int down_page(int status, const Route *route, const char *detail, bool html, PageTone tone,
		     const char *badge, const char *headline, Page *ret)
{
	_cleanup_buf_ Buf b = BUF_INIT(PAGE_BODY_MAX);
	_cleanup_(page_donep) Page p = { 0 };
	const char *name = route_name(route);
	int r;

	if (html) {
		r = html_begin(&b, tone, false, "", name, badge);
		if (r >= 0)
			r = buf_append_str(&b, "<h1><span>");
		if (r >= 0)
			r = append_value(&b, name, true);
		if (r >= 0)
			r = buf_append_str(&b, headline);
		if (r >= 0)
			r = buf_append_str(&b, "</span></h1>\n<p class=\"lead\">");
		if (r >= 0)
			r = append_value(&b, detail ? detail : down_explanation(status, headline),
					 true);
		if (r >= 0)
			r = buf_append_str(&b, "</p>\n<dl>\n");
		if (r >= 0)
			r = append_field(&b, "Project", route->project, true);
		if (r >= 0)
			r = append_field(&b, "State", route->state, true);
		if (r >= 0)
			r = append_field(&b, "Last exit", route->last_exit, true);
		if (r >= 0)
			r = append_field(&b, "Reason", route->reason, true);
		if (r >= 0)
			r = append_field(&b, "Upstream", route->upstream_text, true);
		if (r >= 0)
			r = buf_append_str(&b, "</dl>\n");
		if (r >= 0)
			r = append_log(&b, route->last_lines, true);
		if (r >= 0 && !isempty(route->service)) {
			r = buf_append_str(&b, "<p class=\"hint\">Run <code>localctl logs ");
			if (r >= 0)
				r = append_service_ref(&b, route, true);
			if (r >= 0)
				r = buf_append_str(&b, "</code> for its whole log");
			if (r >= 0 && status == 504)
				r = buf_append_str(&b, ", or reload this page in a moment.</p>\n");
			else if (r >= 0) {
				r = buf_append_str(&b, " and <code>localctl restart ");
				if (r >= 0)
					r = append_service_ref(&b, route, true);
				if (r >= 0)
					r = buf_append_str(&b, "</code> to try again.</p>\n");
			}
		}
		if (r >= 0)
			r = html_end(&b, NULL);
	} else {
		r = buf_printf(&b, "%d ", status);
		if (r >= 0)
			r = append_value(&b, name, false);
		if (r >= 0)
			r = buf_append_str(&b, headline);
		if (r >= 0 && detail) {
			r = buf_append_str(&b, ": ");
			if (r >= 0)
				r = append_value(&b, detail, false);
		}
		if (r >= 0)
			r = buf_append_byte(&b, '\n');
		if (r >= 0)
			r = append_field(&b, "project", route->project, false);
		if (r >= 0)
			r = append_field(&b, "state", route->state, false);
		if (r >= 0)
			r = append_field(&b, "last exit", route->last_exit, false);
		if (r >= 0)
			r = append_field(&b, "reason", route->reason, false);
		if (r >= 0)
			r = append_field(&b, "upstream", route->upstream_text, false);
		if (r >= 0)
			r = append_log(&b, route->last_lines, false);
		if (r >= 0 && !isempty(route->service)) {
			r = buf_append_str(&b, "\nrun `localctl logs ");
			if (r >= 0)
				r = append_service_ref(&b, route, false);
			if (r >= 0)
				r = buf_append_str(&b, "` for its whole log\n");
		}
	}
	if (r < 0)
		return r;
	r = page_finish(&b, status, html, &p);
	if (r < 0)
		return r;
	*ret = p;
	p = (Page){ 0 };
	return 0;
}

int page_bad_gateway(const Route *route, const char *detail, bool html, Page *ret)
{
	return down_page(502, route, detail, html, TONE_ERROR, "502 \xc2\xb7 bad gateway",
			 down_headline(route, detail), ret);
}

int page_gateway_timeout(const Route *route, const char *detail, bool html, Page *ret)
{
	return down_page(504, route, detail, html, TONE_WARN, "504 \xc2\xb7 gateway timeout",
			 " did not become ready in time", ret);
}

/* ":8443" from "web.localhost:8443" or "[::1]:8443" unless it is the scheme's default. */
static void host_port_suffix(const char *host, bool https, char ret[static 8])
{
	ret[0] = 0;
	if (!host)
		return;
	const char *p = strrchr(host, ']');
	p = strchr(p ? p : host, ':');
	if (!p || strchr(p + 1, ':'))
		return;
	size_t n = strlen(p + 1);
	if (n == 0 || n > 5 || strspn(p + 1, "0123456789") != n)
		return;
	if (streq(p + 1, https ? "443" : "80"))
		return;
	(void)strscpy(ret, 8, p);
}

static int append_host_links(Buf *b, char *const *hosts, bool https, const char *port, bool html)
{
	size_t n = 0;
	int r = 0;

	if (html)
		r = buf_append_str(b, "<ul class=\"hosts\">\n");
	STRV_FOREACH (h, hosts) {
		if (r < 0 || n++ >= PAGE_HOSTS_MAX)
			break;
		if (html) {
			r = buf_printf(b, "<li><a href=\"%s://", https ? "https" : "http");
			if (r >= 0)
				r = append_value(b, *h, true);
			if (r >= 0)
				r = buf_printf(b, "%s/\">%s://", port, https ? "https" : "http");
			if (r >= 0)
				r = append_value(b, *h, true);
			if (r >= 0)
				r = buf_printf(b, "%s/</a></li>\n", port);
		} else {
			r = buf_printf(b, "  %s://", https ? "https" : "http");
			if (r >= 0)
				r = append_value(b, *h, false);
			if (r >= 0)
				r = buf_printf(b, "%s/\n", port);
		}
	}
	if (r >= 0 && html)
		r = buf_append_str(b, "</ul>\n");
	return r < 0 ? r : 0;
}

int page_not_found(const char *host, char *const *known_hosts, bool https, bool html, Page *ret)
{
	_cleanup_buf_ Buf b = BUF_INIT(PAGE_BODY_MAX);
	_cleanup_(page_donep) Page p = { 0 };
	char port[8];
	bool any = known_hosts && known_hosts[0];
	int r;

	host_port_suffix(host, https, port);
	if (isempty(host))
		host = "(no host)";

	if (html) {
		r = html_begin(&b, TONE_INFO, false, "No site at ", host, "404 \xc2\xb7 not found");
		if (r >= 0)
			r = buf_append_str(&b, "<h1><span>No site at ");
		if (r >= 0)
			r = append_value(&b, host, true);
		if (r >= 0)
			r = buf_append_str(&b, "</span></h1>\n<p class=\"lead\">No running project "
					       "serves this host name.</p>\n");
		if (r >= 0 && any) {
			r = buf_append_str(&b, "<h2>Known hosts</h2>\n");
			if (r >= 0)
				r = append_host_links(&b, known_hosts, https, port, true);
		} else if (r >= 0)
			r = buf_append_str(&b, "<p class=\"hint\">No hosts are routed yet: start a "
					       "project with <code>localctl up</code>.</p>\n");
		if (r >= 0)
			r = html_end(&b, NULL);
	} else {
		r = buf_append_str(&b, "404 no site at ");
		if (r >= 0)
			r = append_value(&b, host, false);
		if (r >= 0)
			r = buf_append_byte(&b, '\n');
		if (r >= 0 && any) {
			r = buf_append_str(&b, "known hosts:\n");
			if (r >= 0)
				r = append_host_links(&b, known_hosts, https, port, false);
		} else if (r >= 0)
			r = buf_append_str(&b, "no hosts are routed yet: start a project with "
					       "`localctl up`\n");
	}
	if (r < 0)
		return r;
	r = page_finish(&b, 404, html, &p);
	if (r < 0)
		return r;
	*ret = p;
	p = (Page){ 0 };
	return 0;
}

int page_error(int status, const char *detail, bool html, Page *ret)
{
	_cleanup_buf_ Buf b = BUF_INIT(PAGE_BODY_MAX);
	_cleanup_(page_donep) Page p = { 0 };
	char badge[64], title[64];
	int r;

	if (status < 400 || status > 599)
		return -EINVAL;
	const char *phrase = status_phrase(status);
	if (!detail)
		detail = status_explanation(status);

	if (html) {
		(void)strfmt(badge, sizeof(badge), "%d \xc2\xb7 error", status);
		(void)strfmt(title, sizeof(title), "%d %s", status, phrase);
		r = html_begin(&b, status >= 500 ? TONE_ERROR : TONE_WARN, false, "", title, badge);
		if (r >= 0)
			r = buf_printf(&b, "<h1><span>%s</span></h1>\n<p class=\"lead\">", title);
		if (r >= 0)
			r = append_value(&b, detail, true);
		if (r >= 0)
			r = buf_append_str(&b, "</p>\n");
		if (r >= 0)
			r = html_end(&b, NULL);
	} else {
		r = buf_printf(&b, "%d %s: ", status, phrase);
		if (r >= 0)
			r = append_value(&b, detail, false);
		if (r >= 0)
			r = buf_append_byte(&b, '\n');
	}
	if (r < 0)
		return r;
	r = page_finish(&b, status, html, &p);
	if (r < 0)
		return r;
	*ret = p;
	p = (Page){ 0 };
	return 0;
}

int page_dashboard(char *const *known_hosts, bool https, Page *ret)
{
	_cleanup_buf_ Buf b = BUF_INIT(PAGE_BODY_MAX);
	_cleanup_(page_donep) Page p = { 0 };
	int r;

	r = html_begin(&b, TONE_INFO, false, "", "Dashboard", "dashboard");
	if (r >= 0)
		r = buf_append_str(&b, "<h1><span>locald is running</span></h1>\n"
				       "<p class=\"lead\">The dashboard is coming. Until then, "
				       "here is where your services answer.</p>\n");
	if (r >= 0 && known_hosts && known_hosts[0]) {
		r = buf_append_str(&b, "<h2>Routed hosts</h2>\n");
		if (r >= 0)
			r = append_host_links(&b, known_hosts, https, "", true);
	} else if (r >= 0)
		r = buf_append_str(&b, "<p class=\"hint\">No hosts are routed yet: start a project "
				       "with <code>localctl up</code>.</p>\n");
	if (r >= 0)
		r = buf_append_str(&b, "<p class=\"hint\"><code>localctl status</code> shows every "
				       "service and its state.</p>\n");
	if (r >= 0)
		r = html_end(&b, NULL);
	if (r < 0)
		return r;
	r = page_finish(&b, 200, true, &p);
	if (r < 0)
		return r;
	*ret = p;
	p = (Page){ 0 };
	return 0;
}
