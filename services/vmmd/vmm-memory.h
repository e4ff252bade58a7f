/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Guest physical memory: one anonymous mapping split around the 32-bit MMIO hole
 * ([VMM_MMIO_HOLE_START, 4 GiB) holds the virtio-mmio windows, the IOAPIC and the local
 * APIC). Every access from device code goes through guest_memory_ptr(), which checks the
 * whole range lies inside one region.
 */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define VMM_MMIO_HOLE_START 0xd0000000ULL
#define VMM_4G 0x100000000ULL
#define VMM_MEMORY_REGIONS_MAX 2

typedef struct GuestRegion {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
} GuestRegion;

typedef struct GuestMemory {
	uint8_t *base; /* the mapping: region 0 at base, region 1 right after it */
	uint64_t size; /* total bytes */
	GuestRegion regions[VMM_MEMORY_REGIONS_MAX];
	unsigned n_regions;
	int owns_mapping;
} GuestMemory;

/* Map `size` bytes (MAP_NORESERVE: only touched pages cost). -EINVAL for 0. */
int guest_memory_new(uint64_t size, GuestMemory **ret);
/* Use caller-provided memory (tests). */
int guest_memory_wrap(uint8_t *buf, uint64_t size, GuestMemory **ret);
GuestMemory *guest_memory_free(GuestMemory *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(GuestMemory *, guest_memory_free);

/* Host pointer for [gpa, gpa+len) if it lies inside one region; NULL otherwise. */
void *guest_memory_ptr(const GuestMemory *m, uint64_t gpa, uint64_t len);
/* Copy in/out; -EFAULT when out of range. */
int guest_memory_write(GuestMemory *m, uint64_t gpa, const void *data, size_t len);
int guest_memory_read(const GuestMemory *m, uint64_t gpa, void *data, size_t len);
/* End of RAM below the hole. */
uint64_t guest_memory_low_end(const GuestMemory *m);
