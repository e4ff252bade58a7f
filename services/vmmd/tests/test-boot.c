/* SPDX-License-Identifier: MIT */
/* Kernel detection and loading, boot structures, register state: no KVM needed. */

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "vmm-boot.h"

static uint8_t *slurp(const char *env, size_t *ret_size)
{
	const char *p = getenv(env);
	if (!p)
		SKIP("test guest not built (run through meson test)");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	struct stat st;
	ASSERT_OK(fstat(fd, &st));
	uint8_t *b = malloc((size_t)st.st_size);
	ASSERT_TRUE(b);
	ASSERT_EQ(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*ret_size = (size_t)st.st_size;
	return b;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static GuestMemory *memory(uint64_t size)
{
	GuestMemory *m = NULL;
	ASSERT_OK(guest_memory_new(size, &m));
	return m;
}

TEST(detect_formats)
{
	size_t n;
	uint8_t *bz = slurp("VMMD_TEST_GUEST", &n);
	KernelFormat f;
	const char *why = NULL;
	ASSERT_OK(boot_detect(bz, n, &f, &why));
	ASSERT_EQ(f, KERNEL_BZIMAGE);
	/* truncated right after the setup sectors */
	ASSERT_EQ(boot_detect(bz, 5 * 512, &f, &why), -ENOEXEC);
	ASSERT_TRUE(strstr(why, "truncated"));
	/* an old protocol */
	bz[0x206] = 0x05;
	bz[0x207] = 0x02;
	ASSERT_EQ(boot_detect(bz, n, &f, &why), -ENOEXEC);
	ASSERT_TRUE(strstr(why, "2.12"));
	free(bz);

	uint8_t *elf = slurp("VMMD_TEST_GUEST_ELF", &n);
	ASSERT_OK(boot_detect(elf, n, &f, &why));
	ASSERT_EQ(f, KERNEL_ELF_PVH);
	free(elf);

	static const uint8_t text[] = "#!/bin/sh\necho this is not a kernel\n";
	ASSERT_EQ(boot_detect(text, sizeof(text), &f, &why), -ENOEXEC);
	ASSERT_TRUE(strstr(why, "not a kernel"));
	uint8_t zeros[4096] = { 0 };
	ASSERT_EQ(boot_detect(zeros, sizeof(zeros), &f, &why), -ENOEXEC);
	ASSERT_EQ(boot_detect(zeros, 0, &f, &why), -ENOEXEC);
	/* an ELF of another machine */
	uint8_t e[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	e[18] = 183; /* EM_AARCH64 */
	ASSERT_EQ(boot_detect(e, sizeof(e), &f, &why), -ENOEXEC);
	ASSERT_TRUE(strstr(why, "x86-64"));
}

TEST(load_bzimage)
{
	size_t n;
	uint8_t *bz = slurp("VMMD_TEST_GUEST", &n);
	GuestMemory *m = memory(64 << 20);
	static const uint8_t initrd[10000] = { 1, 2, 3 };
	BootSetup b;
	const char *why = NULL;
	ASSERT_OK(boot_load(m, bz, n, initrd, sizeof(initrd), "test=hello exit=7", 2, &b, &why));
	ASSERT_EQ(b.format, KERNEL_BZIMAGE);
	ASSERT_EQ(b.entry, 0x100200);
	ASSERT_EQ(b.info_gpa, VMM_BOOT_PARAMS);
	const uint8_t *bp = guest_memory_ptr(m, VMM_BOOT_PARAMS, 4096);
	ASSERT_EQ(bp[0x210], 0xff);                      /* type_of_loader */
	ASSERT_TRUE(bp[0x211] & 1);                      /* LOADED_HIGH */
	ASSERT_TRUE(memcmp(bp + 0x202, "HdrS", 4) == 0); /* header copied */
	ASSERT_EQ(le32(bp + 0x228), VMM_CMDLINE);
	ASSERT_STREQ((const char *)guest_memory_ptr(m, VMM_CMDLINE, 1), "test=hello exit=7");
	/* initrd: page aligned, above the kernel, inside RAM, contents copied */
	uint32_t ird = le32(bp + 0x218);
	ASSERT_EQ(le32(bp + 0x21c), sizeof(initrd));
	ASSERT_EQ(ird & 0xfff, 0);
	ASSERT_TRUE(ird >= b.kernel_end && ird + sizeof(initrd) <= (64u << 20));
	ASSERT_EQ(*(const uint8_t *)guest_memory_ptr(m, ird + 2, 1), 3);
	/* e820: low RAM, reserved MP table area, RAM from 1 MiB */
	ASSERT_EQ(bp[0x1e8], 3);
	ASSERT_EQ(le64(bp + 0x2d0), 0);
	ASSERT_EQ(le32(bp + 0x2d0 + 16), 1);
	ASSERT_EQ(le64(bp + 0x2d0 + 20), VMM_MPTABLE);
	ASSERT_EQ(le32(bp + 0x2d0 + 36), 2);
	ASSERT_EQ(le64(bp + 0x2d0 + 40), 0x100000);
	ASSERT_EQ(le64(bp + 0x2d0 + 48), (64 << 20) - 0x100000);
	/* the protected-mode kernel at 1 MiB */
	size_t off = (size_t)(bz[0x1f1] + 1) * 512;
	ASSERT_TRUE(memcmp(guest_memory_ptr(m, 0x100000, 64), bz + off, 64) == 0);
	/* identity page tables: PML4 -> PDPT -> PD, 2 MiB pages */
	const uint8_t *pt = guest_memory_ptr(m, VMM_PML4, 0x3000);
	ASSERT_EQ(le64(pt), (VMM_PML4 + 0x1000) | 3);
	ASSERT_EQ(le64(pt + 0x2000 + 8 * 3), (3ULL << 21) | 0x83);

	struct kvm_regs regs;
	struct kvm_sregs sregs = { 0 };
	boot_cpu_state(&b, &regs, &sregs);
	ASSERT_EQ(regs.rip, 0x100200);
	ASSERT_EQ(regs.rsi, VMM_BOOT_PARAMS);
	ASSERT_TRUE(sregs.efer & 0x500);
	ASSERT_TRUE(sregs.cr0 & 0x80000001ULL);
	ASSERT_EQ(sregs.cr3, VMM_PML4);
	ASSERT_EQ(sregs.cs.l, 1);
	ASSERT_EQ(sregs.cs.selector, BOOT_SEL_CODE64);
	guest_memory_free(m);
	free(bz);
}

TEST(load_pvh)
{
	size_t n;
	uint8_t *elf = slurp("VMMD_TEST_GUEST_ELF", &n);
	GuestMemory *m = memory(32 << 20);
	BootSetup b;
	const char *why = NULL;
	ASSERT_OK(boot_load(m, elf, n, NULL, 0, "test=smp", 1, &b, &why));
	ASSERT_EQ(b.format, KERNEL_ELF_PVH);
	ASSERT_TRUE(b.entry > 0x100000 && b.entry < b.kernel_end);
	const uint8_t *si = guest_memory_ptr(m, VMM_PVH_INFO, 64);
	ASSERT_EQ(le32(si), 0x336ec578);
	ASSERT_EQ(le64(si + 24), VMM_CMDLINE);
	ASSERT_EQ(le32(si + 48), 3); /* memory map entries */
	struct kvm_regs regs;
	struct kvm_sregs sregs = { 0 };
	boot_cpu_state(&b, &regs, &sregs);
	ASSERT_EQ(regs.rbx, VMM_PVH_INFO);
	ASSERT_EQ(sregs.cr0 & 0x80000001ULL, 1); /* protected, no paging */
	ASSERT_EQ(sregs.efer, 0);
	ASSERT_EQ(sregs.cs.db, 1);
	guest_memory_free(m);
	free(elf);
}

TEST(load_errors)
{
	size_t n;
	uint8_t *bz = slurp("VMMD_TEST_GUEST", &n);
	BootSetup b;
	const char *why = NULL;
	GuestMemory *m = memory(1 << 20);
	ASSERT_EQ(boot_load(m, bz, n, NULL, 0, "", 1, &b, &why), -E2BIG);
	ASSERT_TRUE(strstr(why, "memory"));
	guest_memory_free(m);
	m = memory(16 << 20);
	char *longline = malloc(5000);
	memset(longline, 'x', 4999);
	longline[4999] = 0;
	ASSERT_EQ(boot_load(m, bz, n, NULL, 0, longline, 1, &b, &why), -E2BIG);
	ASSERT_TRUE(strstr(why, "command line"));
	static uint8_t big[15 << 20];
	ASSERT_EQ(boot_load(m, bz, n, big, sizeof(big), "", 1, &b, &why), -E2BIG);
	ASSERT_TRUE(strstr(why, "initrd"));
	free(longline);
	guest_memory_free(m);
	free(bz);
}

TEST(mptable)
{
	GuestMemory *m = memory(4 << 20);
	ASSERT_OK(boot_write_mptable(m, 4));
	const uint8_t *mpf = guest_memory_ptr(m, VMM_MPTABLE, 16);
	ASSERT_TRUE(memcmp(mpf, "_MP_", 4) == 0);
	uint8_t sum = 0;
	for (int i = 0; i < 16; i++)
		sum = (uint8_t)(sum + mpf[i]);
	ASSERT_EQ(sum, 0);
	const uint8_t *mpc = guest_memory_ptr(m, le32(mpf + 4), 44);
	ASSERT_TRUE(memcmp(mpc, "PCMP", 4) == 0);
	uint16_t len = (uint16_t)(mpc[4] | mpc[5] << 8);
	sum = 0;
	for (int i = 0; i < len; i++)
		sum = (uint8_t)(sum + mpc[i]);
	ASSERT_EQ(sum, 0);
	int cpus = 0, bsp = 0;
	const uint8_t *e = mpc + 44;
	for (int i = 0; i < (mpc[34] | mpc[35] << 8); i++) {
		if (e[0] == 0) {
			cpus += e[3] & 1;
			bsp += (e[3] & 2) != 0;
			e += 20;
		} else
			e += 8;
	}
	ASSERT_EQ(cpus, 4);
	ASSERT_EQ(bsp, 1);
	ASSERT_TRUE(VMM_MPTABLE + (uint64_t)(e - mpf) <= VMM_EBDA_END);
	ASSERT_EQ(boot_write_mptable(m, 0), -EINVAL);
	ASSERT_EQ(boot_write_mptable(m, VMM_VCPUS_MAX + 1), -EINVAL);
	ASSERT_OK(boot_write_mptable(m, VMM_VCPUS_MAX));
	guest_memory_free(m);
}

TEST(memory_regions)
{
	GuestMemory *m = memory(4ULL << 30); /* lazily mapped: only touched pages count */
	ASSERT_EQ(m->n_regions, 2);
	ASSERT_EQ(guest_memory_low_end(m), VMM_MMIO_HOLE_START);
	ASSERT_EQ(m->regions[1].gpa, VMM_4G);
	ASSERT_EQ(m->regions[1].size, (4ULL << 30) - VMM_MMIO_HOLE_START);
	ASSERT_TRUE(guest_memory_ptr(m, 0, 16));
	ASSERT_TRUE(guest_memory_ptr(m, VMM_MMIO_HOLE_START - 16, 16));
	ASSERT_FALSE(guest_memory_ptr(m, VMM_MMIO_HOLE_START - 16, 17)); /* crosses the hole */
	ASSERT_FALSE(guest_memory_ptr(m, VMM_MMIO_HOLE_START, 1));
	ASSERT_TRUE(guest_memory_ptr(m, VMM_4G, 1));
	ASSERT_FALSE(guest_memory_ptr(m, UINT64_MAX - 2, 8)); /* wraps */
	ASSERT_FALSE(guest_memory_ptr(m, 0, UINT64_MAX));
	E820Entry e[8];
	ASSERT_EQ(boot_e820(m, e, 8), 4);
	ASSERT_EQ(e[3].addr, VMM_4G);
	guest_memory_free(m);
	ASSERT_EQ(guest_memory_new(0, &m), -EINVAL);
}

/* A real Linux bzImage (Debian's linux-image-amd64), when installed. */
TEST(linux_bzimage)
{
	glob_t g;
	if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0 || g.gl_pathc == 0)
		SKIP("no /boot/vmlinuz-* (linux-image-amd64 not installed)");
	int fd = open(g.gl_pathv[g.gl_pathc - 1], O_RDONLY | O_CLOEXEC);
	globfree(&g);
	if (fd < 0)
		SKIP("kernel not readable");
	struct stat st;
	ASSERT_OK(fstat(fd, &st));
	uint8_t *k = malloc((size_t)st.st_size);
	ASSERT_TRUE(k);
	ASSERT_EQ(read(fd, k, (size_t)st.st_size), st.st_size);
	close(fd);
	KernelFormat f;
	const char *why = NULL;
	ASSERT_OK(boot_detect(k, (size_t)st.st_size, &f, &why));
	ASSERT_EQ(f, KERNEL_BZIMAGE);
	GuestMemory *m = memory(256 << 20);
	static const uint8_t initrd[1 << 20];
	BootSetup b;
	ASSERT_OK(boot_load(m, k, (size_t)st.st_size, initrd, sizeof(initrd),
			    "console=ttyS0 reboot=k", 2, &b, &why));
	const uint8_t *bp = guest_memory_ptr(m, VMM_BOOT_PARAMS, 4096);
	ASSERT_TRUE((bp[0x206] | bp[0x207] << 8) >= 0x020c);
	ASSERT_EQ(le32(bp + 0x228), VMM_CMDLINE);
	uint32_t ird = le32(bp + 0x218), max = le32(bp + 0x22c);
	ASSERT_TRUE(ird >= b.kernel_end && ird + sizeof(initrd) - 1 <= max);
	/* the kernel's own init_size fits below the initrd */
	ASSERT_TRUE(VMM_KERNEL_LOAD + le32(k + 0x260) <= ird);
	guest_memory_free(m);
	free(k);
}

TEST_MAIN();
