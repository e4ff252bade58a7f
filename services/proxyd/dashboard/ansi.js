// SPDX-License-Identifier: MIT
// ANSI SGR escapes → styled segments. Handles reset (0), bold (1), dim (2), italic (3),
// underline (4), their resets (22, 23, 24), 16 colours (30–37, 90–97 and backgrounds
// 40–47, 100–107, 39/49 defaults), 256 colours (38;5;n) and truecolor (38;2;r;g;b).
// Other escape sequences (cursor moves, OSC titles) are dropped.
//
// The page's Content-Security-Policy forbids inline style attributes, so colours are
// classes: the 16 theme colours are in app.css, others get a rule made once through the
// CSSOM (allowed by CSP).

const dynamicRules = new Map();
let sheet = null;

function colorClass(kind, rgb) {
  const hex = rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
  const cls = `${kind}-${hex}`;
  if (!dynamicRules.has(cls)) {
    if (!sheet) {
      // A constructed sheet: CSSOM, which the page's CSP allows (a <style> it would not).
      sheet = new CSSStyleSheet();
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    const prop = kind === "fg" ? "color" : "background-color";
    try {
      sheet.insertRule(`.${cls}{${prop}:#${hex}}`, sheet.cssRules.length);
    } catch (e) {
      /* a sheet we cannot write: the text stays uncoloured */
    }
    dynamicRules.set(cls, true);
  }
  return cls;
}

function xterm256(n) {
  if (n < 16) return null; // handled as a theme colour
  if (n < 232) {
    n -= 16;
    const steps = [0, 95, 135, 175, 215, 255];
    return [steps[Math.floor(n / 36)], steps[Math.floor(n / 6) % 6], steps[n % 6]];
  }
  const v = 8 + (n - 232) * 10;
  return [v, v, v];
}

// One line → [{text, cls}] (cls "" for plain text).
export function parseAnsi(line) {
  const out = [];
  if (line.indexOf("\x1b") < 0) {
    out.push({ text: line, cls: "" });
    return out;
  }
  let fg = null,
    bg = null,
    bold = false,
    dim = false,
    italic = false,
    underline = false;
  const classes = () => {
    const c = [];
    if (fg) c.push(fg);
    if (bg) c.push(bg);
    if (bold) c.push("a-b");
    if (dim) c.push("a-d");
    if (italic) c.push("a-i");
    if (underline) c.push("a-u");
    return c.join(" ");
  };
  // CSI ... final byte, or OSC ... BEL/ST, or a lone ESC + one char.
  const re = /\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;
  let last = 0,
    m;
  while ((m = re.exec(line))) {
    if (m.index > last) out.push({ text: line.slice(last, m.index), cls: classes() });
    last = re.lastIndex;
    if (m[2] !== "m") continue;
    const codes = (m[1] || "0").split(/[;:]/).map((s) => (s === "" ? 0 : parseInt(s, 10)));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) {
        fg = bg = null;
        bold = dim = italic = underline = false;
      } else if (c === 1) bold = true;
      else if (c === 2) dim = true;
      else if (c === 3) italic = true;
      else if (c === 4) underline = true;
      else if (c === 22) bold = dim = false;
      else if (c === 23) italic = false;
      else if (c === 24) underline = false;
      else if (c >= 30 && c <= 37) fg = `a-f${c - 30}`;
      else if (c >= 90 && c <= 97) fg = `a-f${c - 90 + 8}`;
      else if (c === 39) fg = null;
      else if (c >= 40 && c <= 47) bg = `a-g${c - 40}`;
      else if (c >= 100 && c <= 107) bg = `a-g${c - 100 + 8}`;
      else if (c === 49) bg = null;
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const n = codes[i + 2] | 0;
        const rgb = xterm256(n);
        const cls = rgb ? colorClass(c === 38 ? "fg" : "bg", rgb) : `a-${c === 38 ? "f" : "g"}${n}`;
        if (c === 38) fg = cls;
        else bg = cls;
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        const rgb = [codes[i + 2] | 0, codes[i + 3] | 0, codes[i + 4] | 0].map((v) =>
          Math.max(0, Math.min(255, v)),
        );
        const cls = colorClass(c === 38 ? "fg" : "bg", rgb);
        if (c === 38) fg = cls;
        else bg = cls;
        i += 4;
      }
    }
  }
  if (last < line.length) out.push({ text: line.slice(last), cls: classes() });
  return out;
}

export function stripAnsi(line) {
  return line.indexOf("\x1b") < 0
    ? line
    : line.replace(/\x1b(?:\[[0-9;:?]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g, "");
}

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ESC[c]);
}

// Segments → HTML, with case-insensitive matches of `query` wrapped in <mark>.
export function segmentsToHtml(segs, query) {
  let html = "";
  const q = query ? query.toLowerCase() : "";
  for (const s of segs) {
    let inner;
    if (q) {
      const lower = s.text.toLowerCase();
      inner = "";
      let i = 0,
        j;
      while ((j = lower.indexOf(q, i)) >= 0) {
        inner += escapeHtml(s.text.slice(i, j)) + "<mark>" + escapeHtml(s.text.slice(j, j + q.length)) + "</mark>";
        i = j + q.length;
      }
      inner += escapeHtml(s.text.slice(i));
    } else inner = escapeHtml(s.text);
    html += s.cls ? `<span class="${s.cls}">${inner}</span>` : inner;
  }
  return html;
}
