/* SPDX-License-Identifier: MIT */
/* The dependency graph: start waves, closures, and cycles named in full. */
#include <stdlib.h>
#include <string.h>

#include "project-internal.h"
#include "strutil.h"

static void nodes_free(ServiceNode *nodes, size_t n)
{
	if (!nodes)
		return;
	for (size_t i = 0; i < n; i++) {
		free(nodes[i].deps);
		free(nodes[i].dependents);
	}
	free(nodes);
}

/* Edges from depends_on; unknown names are skipped (validation reports them). */
static int graph_build(const Project *p, ServiceNode **ret)
{
	size_t n = p->n_services;
	ServiceNode *nodes = calloc(n ? n : 1, sizeof(ServiceNode));
	if (!nodes)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		size_t m = strv_length(p->services[i].depends_on);
		nodes[i].deps = calloc(m ? m : 1, sizeof(size_t));
		if (!nodes[i].deps)
			goto oom;
		STRV_FOREACH (d, p->services[i].depends_on) {
			ssize_t j = project_service_index(p, *d);
			if (j >= 0) /* depends_on has no repeats, so neither do edges */
				nodes[i].deps[nodes[i].n_deps++] = (size_t)j;
		}
	}
	/* Reverse edges: count, allocate, fill. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < nodes[i].n_deps; k++)
			nodes[nodes[i].deps[k]].n_dependents++;
	for (size_t i = 0; i < n; i++) {
		nodes[i].dependents =
		    calloc(nodes[i].n_dependents ? nodes[i].n_dependents : 1, sizeof(size_t));
		if (!nodes[i].dependents)
			goto oom;
		nodes[i].n_dependents = 0;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < nodes[i].n_deps; k++) {
			ServiceNode *d = &nodes[nodes[i].deps[k]];
			d->dependents[d->n_dependents++] = i;
		}
	*ret = nodes;
	return 0;
oom:
	nodes_free(nodes, n);
	return -ENOMEM;
}

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Find a cycle among `alive` nodes, starting the walk at `start`. Every alive node must
 * have an alive dependency (true of what Kahn's algorithm leaves behind, and of a
 * strongly connected component), so the walk never stops and must come back to a node.
 * Returns "a -> b -> a", rotated to begin at the cycle's first service in file order,
 * and that service's index in *ret_first and the edge's target in *ret_next.
 */
static char *cycle_describe(const Project *p, const ServiceNode *nodes, const bool *alive,
			    size_t start, size_t *ret_first, size_t *ret_next)
{
	size_t n = p->n_services;
	_cleanup_free_ size_t *path = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ size_t *seen_at = calloc(n, sizeof(size_t)); /* 1 + index in path */
	if (!path || !seen_at)
		return NULL;

	size_t len = 0, cur = start;
	while (!seen_at[cur]) {
		seen_at[cur] = len + 1;
		path[len++] = cur;
		size_t next = cur;
		for (size_t k = 0; k < nodes[cur].n_deps; k++)
			if (alive[nodes[cur].deps[k]]) {
				next = nodes[cur].deps[k];
				break;
			}
		cur = next;
	}
	size_t from = seen_at[cur] - 1, clen = len - from;
	size_t *cyc = path + from, lowest = 0;
	for (size_t k = 1; k < clen; k++)
		if (cyc[k] < cyc[lowest])
			lowest = k;

	_cleanup_buf_ Buf b = BUF_INIT(0);
	for (size_t k = 0; k <= clen; k++)
		if (buf_printf(&b, "%s%s", k ? " -> " : "",
			       p->services[cyc[(lowest + k) % clen]].name) < 0)
			return NULL;
	*ret_first = cyc[lowest];
	*ret_next = cyc[(lowest + 1) % clen];
	return buf_steal(&b, NULL);
}

int project_start_waves(const Project *p, ProjectWaves *ret, char **ret_cycle)
{
	size_t n = p->n_services;
	ServiceNode *nodes = NULL;
	int r = graph_build(p, &nodes);
	if (r < 0)
		return r;

	_cleanup_free_ size_t *pending = calloc(n ? n : 1, sizeof(size_t));
	_cleanup_free_ size_t *order = calloc(n ? n : 1, sizeof(size_t));
	_cleanup_free_ size_t *wave_start = calloc(n + 2, sizeof(size_t));
	_cleanup_free_ bool *alive = calloc(n ? n : 1, sizeof(bool));
	if (!pending || !order || !wave_start || !alive) {
		nodes_free(nodes, n);
		return -ENOMEM;
	}

	/* Kahn's algorithm, one wave at a time: a wave is what became ready during the last. */
	size_t done = 0, n_waves = 0;
	for (size_t i = 0; i < n; i++) {
		pending[i] = nodes[i].n_deps;
		if (pending[i] == 0)
			order[done++] = i;
	}
	size_t wave_begin = 0;
	while (wave_begin < done) {
		size_t wave_end = done;
		wave_start[n_waves] = wave_begin;
		for (size_t k = wave_begin; k < wave_end; k++) {
			ServiceNode *s = &nodes[order[k]];
			s->wave = n_waves;
			for (size_t d = 0; d < s->n_dependents; d++)
				if (--pending[s->dependents[d]] == 0)
					order[done++] = s->dependents[d];
		}
		/* Within a wave, file order: deterministic and what the user wrote. */
		qsort(order + wave_end, done - wave_end, sizeof(size_t), size_cmp);
		n_waves++;
		wave_begin = wave_end;
	}
	wave_start[n_waves] = done;

	if (done < n) {
		if (ret_cycle) {
			size_t start = 0, first, next;
			for (size_t i = 0; i < n; i++)
				alive[i] = pending[i] > 0;
			while (!alive[start])
				start++;
			char *cycle = cycle_describe(p, nodes, alive, start, &first, &next);
			if (!cycle) {
				nodes_free(nodes, n);
				return -ENOMEM;
			}
			*ret_cycle = cycle;
		}
		nodes_free(nodes, n);
		return -ELOOP;
	}

	*ret = (ProjectWaves){
		.n_services = n,
		.nodes = nodes,
		.n_waves = n_waves,
		.order = TAKE_PTR(order),
		.wave_start = TAKE_PTR(wave_start),
	};
	return 0;
}

void project_waves_done(ProjectWaves *w)
{
	nodes_free(w->nodes, w->n_services);
	free(w->order);
	free(w->wave_start);
	*w = (ProjectWaves){ 0 };
}

int project_waves_closure(const ProjectWaves *w, size_t idx, bool dependents, bool *in_set)
{
	if (idx >= w->n_services)
		return -EINVAL;
	_cleanup_free_ size_t *stack = calloc(w->n_services, sizeof(size_t));
	if (!stack)
		return -ENOMEM;
	size_t top = 0;
	if (!in_set[idx]) {
		in_set[idx] = true;
		stack[top++] = idx;
	}
	while (top > 0) {
		const ServiceNode *s = &w->nodes[stack[--top]];
		size_t m = dependents ? s->n_dependents : s->n_deps;
		const size_t *next = dependents ? s->dependents : s->deps;
		for (size_t k = 0; k < m; k++)
			if (!in_set[next[k]]) {
				in_set[next[k]] = true;
				stack[top++] = next[k]; /* each node is pushed once: top ≤ n */
			}
	}
	return 0;
}

/* Tarjan's strongly connected components, so each independent cycle is reported once. */
typedef struct Tarjan {
	const ServiceNode *nodes;
	size_t *index, *low, *stack;
	bool *on_stack;
	size_t next_index, top;
	size_t *component; /* component id + 1 per node */
	size_t n_components;
} Tarjan;

static void tarjan_visit(Tarjan *t, size_t v)
{
	/* Recursion depth ≤ PROJECT_SERVICES_MAX, which is small. */
	t->index[v] = t->low[v] = ++t->next_index;
	t->stack[t->top++] = v;
	t->on_stack[v] = true;
	for (size_t k = 0; k < t->nodes[v].n_deps; k++) {
		size_t w = t->nodes[v].deps[k];
		if (!t->index[w]) {
			tarjan_visit(t, w);
			t->low[v] = MIN(t->low[v], t->low[w]);
		} else if (t->on_stack[w])
			t->low[v] = MIN(t->low[v], t->index[w]);
	}
	if (t->low[v] == t->index[v]) {
		t->n_components++;
		size_t w;
		do {
			w = t->stack[--t->top];
			t->on_stack[w] = false;
			t->component[w] = t->n_components;
		} while (w != v);
	}
}

int project_check_cycles(const Project *p, DiagList *diags)
{
	size_t n = p->n_services;
	ServiceNode *nodes = NULL;
	int r = graph_build(p, &nodes);
	if (r < 0)
		return r;

	size_t *mem = calloc(5 * (n ? n : 1), sizeof(size_t));
	bool *flags = calloc(2 * (n ? n : 1), sizeof(bool));
	if (!mem || !flags) {
		r = -ENOMEM;
		goto finish;
	}
	Tarjan t = {
		.nodes = nodes,
		.index = mem,
		.low = mem + n,
		.stack = mem + 2 * n,
		.component = mem + 3 * n,
		.on_stack = flags,
	};
	size_t *size = mem + 4 * n; /* members per component id - 1 */
	bool *alive = flags + n;
	for (size_t v = 0; v < n; v++)
		if (!t.index[v])
			tarjan_visit(&t, v);
	for (size_t v = 0; v < n; v++)
		size[t.component[v] - 1]++;

	for (size_t c = 1; c <= t.n_components; c++) {
		/* The component's first member in file order anchors the report. */
		size_t first_member = n;
		for (size_t v = 0; v < n && first_member == n; v++)
			if (t.component[v] == c)
				first_member = v;
		bool self_loop = false;
		for (size_t k = 0; k < nodes[first_member].n_deps; k++)
			if (nodes[first_member].deps[k] == first_member)
				self_loop = true;
		if (size[c - 1] < 2 && !self_loop)
			continue;

		for (size_t v = 0; v < n; v++)
			alive[v] = t.component[v] == c;
		size_t first, next;
		_cleanup_free_ char *cycle =
		    cycle_describe(p, nodes, alive, first_member, &first, &next);
		if (!cycle) {
			r = -ENOMEM;
			goto finish;
		}
		const Service *s = &p->services[first];
		SourcePos pos = s->pos.depends_on;
		STRV_FOREACH (d, s->depends_on)
			if (streq(*d, p->services[next].name))
				pos = s->depends_on_pos[d - s->depends_on];
		diag_at(
		    diags, DIAG_ERROR, p->config_path, pos,
		    "services in a cycle would wait for each other forever; remove one of these "
		    "depends_on entries",
		    "dependency cycle: %s", cycle);
	}
finish:
	free(mem);
	free(flags);
	nodes_free(nodes, n);
	return r;
}
