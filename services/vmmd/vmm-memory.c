/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm-memory.h"

static void layout(GuestMemory *m)
{
	uint64_t low = m->size < VMM_MMIO_HOLE_START ? m->size : VMM_MMIO_HOLE_START;
	m->regions[0] = (GuestRegion){ .gpa = 0, .size = low, .host = m->base };
	m->n_regions = 1;
	if (m->size > low) {
		m->regions[1] =
		    (GuestRegion){ .gpa = VMM_4G, .size = m->size - low, .host = m->base + low };
		m->n_regions = 2;
	}
}

int guest_memory_new(uint64_t size, GuestMemory **ret)
{
	if (size == 0 || size > (1ULL << 46))
		return -EINVAL;
	GuestMemory *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		free(m);
		return -ENOMEM;
	}
	(void)madvise(p, size, MADV_MERGEABLE);
	m->base = p;
	m->size = size;
	m->owns_mapping = 1;
	layout(m);
	*ret = m;
	return 0;
}

int guest_memory_wrap(uint8_t *buf, uint64_t size, GuestMemory **ret)
{
	if (!buf || size == 0)
		return -EINVAL;
	GuestMemory *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base = buf;
	m->size = size;
	layout(m);
	*ret = m;
	return 0;
}

GuestMemory *guest_memory_free(GuestMemory *m)
{
	if (!m)
		return NULL;
	if (m->owns_mapping && m->base)
		munmap(m->base, m->size);
	free(m);
	return NULL;
}

void *guest_memory_ptr(const GuestMemory *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->n_regions; i++) {
		const GuestRegion *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int guest_memory_write(GuestMemory *m, uint64_t gpa, const void *data, size_t len)
{
	void *p = guest_memory_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, data, len);
	return 0;
}

int guest_memory_read(const GuestMemory *m, uint64_t gpa, void *data, size_t len)
{
	const void *p = guest_memory_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(data, p, len);
	return 0;
}

uint64_t guest_memory_low_end(const GuestMemory *m)
{
	return m->regions[0].size;
}
