// SPDX-License-Identifier: MIT
// A bounded ring of log lines and a virtualized list: fixed row height, only the rows in
// view (plus a few) exist in the DOM, whatever the number of lines.

export class Ring {
  constructor(cap) {
    this.cap = cap;
    this.items = new Array(cap);
    this.total = 0; // every item ever pushed; item k lives at k % cap while k >= first
  }
  push(item) {
    item.k = this.total;
    this.items[this.total % this.cap] = item;
    this.total++;
    return item.k;
  }
  get first() {
    return Math.max(0, this.total - this.cap);
  }
  get(k) {
    return k >= this.first && k < this.total ? this.items[k % this.cap] : undefined;
  }
  clear() {
    this.items = new Array(this.cap);
    this.total = 0;
  }
}

// The keys of a Ring's items that pass a filter, in order; items that left the ring drop
// out of the front.
export class View {
  constructor(ring, pred) {
    this.ring = ring;
    this.keys = [];
    this.start = 0;
    this.setFilter(pred);
  }
  setFilter(pred) {
    this.pred = pred;
    this.keys = [];
    this.start = 0;
    for (let k = this.ring.first; k < this.ring.total; k++) {
      const it = this.ring.get(k);
      if (!pred || pred(it)) this.keys.push(k);
    }
  }
  add(item) {
    if (!this.pred || this.pred(item)) this.keys.push(item.k);
  }
  trim() {
    const first = this.ring.first;
    let s = this.start;
    while (s < this.keys.length && this.keys[s] < first) s++;
    this.start = s;
    if (s > 4096 && s > this.keys.length / 2) {
      this.keys = this.keys.slice(s);
      this.start = 0;
    }
  }
  get length() {
    return this.keys.length - this.start;
  }
  item(i) {
    return this.ring.get(this.keys[this.start + i]);
  }
}

export class VirtualList {
  // render(el, index) fills a row element; rowHeight in px.
  constructor(viewport, rowHeight, render) {
    this.viewport = viewport;
    this.rowHeight = rowHeight;
    this.render = render;
    this.count = 0;
    this.spacer = document.createElement("div");
    this.spacer.className = "vl-spacer";
    this.rows = document.createElement("div");
    this.rows.className = "vl-rows";
    this.spacer.appendChild(this.rows);
    viewport.appendChild(this.spacer);
    this.pool = [];
    this.version = 0;
    this.pending = false;
    this.programmatic = 0;
    this.onUserScroll = null;
    viewport.addEventListener("scroll", () => {
      if (this.programmatic > 0) this.programmatic--;
      else if (this.onUserScroll) this.onUserScroll(this.atEnd());
      this.schedule();
    });
    new ResizeObserver(() => this.schedule()).observe(viewport);
  }
  setCount(n) {
    if (n === this.count) return;
    this.count = n;
    this.spacer.style.height = `${n * this.rowHeight}px`;
    this.schedule();
  }
  invalidate() {
    this.version++;
    this.schedule();
  }
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }
  atEnd() {
    const v = this.viewport;
    return v.scrollTop + v.clientHeight >= v.scrollHeight - this.rowHeight * 1.5;
  }
  scrollToEnd() {
    const v = this.viewport;
    const target = Math.max(0, this.count * this.rowHeight - v.clientHeight);
    if (Math.abs(v.scrollTop - target) > 1) {
      this.programmatic++;
      v.scrollTop = target;
    }
    this.schedule();
  }
  scrollToIndex(i) {
    const v = this.viewport;
    this.programmatic++;
    v.scrollTop = Math.max(0, i * this.rowHeight - v.clientHeight / 2);
    this.schedule();
  }
  draw() {
    const v = this.viewport;
    const h = this.rowHeight;
    const over = 8;
    const first = Math.max(0, Math.floor(v.scrollTop / h) - over);
    const visible = Math.ceil(v.clientHeight / h) + 2 * over;
    const last = Math.min(this.count, first + visible);
    const n = Math.max(0, last - first);
    while (this.pool.length < n) {
      const el = document.createElement("div");
      el.className = "vl-row";
      el._idx = -1;
      this.rows.appendChild(el);
      this.pool.push(el);
    }
    this.rows.style.transform = `translateY(${first * h}px)`;
    for (let j = 0; j < this.pool.length; j++) {
      const el = this.pool[j];
      if (j >= n) {
        if (!el.hidden) el.hidden = true;
        continue;
      }
      if (el.hidden) el.hidden = false;
      const idx = first + j;
      if (el._idx !== idx || el._ver !== this.version) {
        el._idx = idx;
        el._ver = this.version;
        this.render(el, idx);
      }
    }
  }
}
