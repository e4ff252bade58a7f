/* SPDX-License-Identifier: MIT */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vmm-boot.h"

/* boot_params / setup_header offsets (boot.rst, "THE REAL-MODE KERNEL HEADER"). */
enum {
	BP_EXT_RAMDISK_IMAGE = 0x0c0,
	BP_EXT_RAMDISK_SIZE = 0x0c4,
	BP_EXT_CMD_LINE_PTR = 0x0c8,
	BP_E820_ENTRIES = 0x1e8,
	HDR_SETUP_SECTS = 0x1f1,
	HDR_SYSSIZE = 0x1f4,
	HDR_BOOT_FLAG = 0x1fe,
	HDR_JUMP = 0x200,
	HDR_MAGIC = 0x202,
	HDR_VERSION = 0x206,
	HDR_TYPE_OF_LOADER = 0x210,
	HDR_LOADFLAGS = 0x211,
	HDR_CODE32_START = 0x214,
	HDR_RAMDISK_IMAGE = 0x218,
	HDR_RAMDISK_SIZE = 0x21c,
	HDR_HEAP_END_PTR = 0x224,
	HDR_CMD_LINE_PTR = 0x228,
	HDR_INITRD_ADDR_MAX = 0x22c,
	HDR_XLOADFLAGS = 0x236,
	HDR_CMDLINE_SIZE = 0x238,
	HDR_INIT_SIZE = 0x260,
	BP_E820_TABLE = 0x2d0,
	BP_SIZE = 0x1000,
	E820_MAX = 128,
};

#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define PVH_NOTE_TYPE 18
#define PVH_MAGIC 0x336ec578

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

const char *kernel_format_to_string(KernelFormat f)
{
	switch (f) {
	case KERNEL_BZIMAGE:
		return "bzimage";
	case KERNEL_ELF_PVH:
		return "pvh";
	default:
		return NULL;
	}
}

/* ---- ELF ---- */

static int elf_header(const uint8_t *image, size_t size, Elf64_Ehdr *ret, const char **why)
{
	if (size < sizeof(Elf64_Ehdr)) {
		*why = "ELF file too short";
		return -ENOEXEC;
	}
	memcpy(ret, image, sizeof(*ret));
	if (ret->e_ident[EI_CLASS] != ELFCLASS64 || ret->e_ident[EI_DATA] != ELFDATA2LSB ||
	    ret->e_machine != EM_X86_64) {
		*why = "ELF file is not x86-64 (64-bit, little endian)";
		return -ENOEXEC;
	}
	if (ret->e_phentsize != sizeof(Elf64_Phdr) || ret->e_phnum == 0 || ret->e_phoff > size ||
	    (size - ret->e_phoff) / sizeof(Elf64_Phdr) < ret->e_phnum) {
		*why = "ELF program headers out of the file";
		return -ENOEXEC;
	}
	return 0;
}

/* The PVH entry point from a PT_NOTE segment; -ENOENT when none. */
static int elf_pvh_entry(const uint8_t *image, size_t size, const Elf64_Ehdr *eh, uint64_t *ret)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, image + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE || ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			continue;
		const uint8_t *p = image + ph.p_offset, *end = p + ph.p_filesz;
		while (end - p >= 12) {
			uint32_t namesz = get32(p), descsz = get32(p + 4), type = get32(p + 8);
			size_t name_al = ((size_t)namesz + 3) & ~(size_t)3;
			size_t desc_al = ((size_t)descsz + 3) & ~(size_t)3;
			p += 12;
			if (name_al > (size_t)(end - p) || desc_al > (size_t)(end - p) - name_al)
				break;
			if (type == PVH_NOTE_TYPE && namesz == 4 && memcmp(p, "Xen", 4) == 0 &&
			    (descsz == 4 || descsz == 8)) {
				const uint8_t *d = p + name_al;
				*ret = descsz == 4
					   ? get32(d)
					   : (uint64_t)get32(d) | (uint64_t)get32(d + 4) << 32;
				return 0;
			}
			p += name_al + desc_al;
		}
	}
	return -ENOENT;
}

int boot_detect(const uint8_t *image, size_t size, KernelFormat *ret, const char **ret_why)
{
	const char *why = NULL;
	if (size >= 4 && memcmp(image, ELFMAG, SELFMAG) == 0) {
		Elf64_Ehdr eh;
		uint64_t entry;
		int r = elf_header(image, size, &eh, &why);
		if (r < 0)
			goto fail;
		if (elf_pvh_entry(image, size, &eh, &entry) < 0) {
			why = "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)";
			goto fail;
		}
		*ret = KERNEL_ELF_PVH;
		return 0;
	}
	if (size < 0x300 || get16(image + HDR_BOOT_FLAG) != 0xaa55 ||
	    memcmp(image + HDR_MAGIC, "HdrS", 4) != 0) {
		why = "not a kernel: neither a bzImage (no \"HdrS\" setup header) nor an ELF "
		      "vmlinux";
		goto fail;
	}
	if (get16(image + HDR_VERSION) < 0x020c) {
		why = "bzImage boot protocol older than 2.12 (no 64-bit entry)";
		goto fail;
	}
	if (!(get16(image + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		why = "bzImage has no 64-bit entry point (XLF_KERNEL_64 not set)";
		goto fail;
	}
	unsigned setup_sects = image[HDR_SETUP_SECTS] ? image[HDR_SETUP_SECTS] : 4;
	if ((size_t)(setup_sects + 1) * 512 >= size) {
		why = "bzImage is truncated (no protected-mode kernel after the setup sectors)";
		goto fail;
	}
	*ret = KERNEL_BZIMAGE;
	return 0;
fail:
	if (ret_why)
		*ret_why = why;
	return -ENOEXEC;
}

/* ---- memory map, tables ---- */

unsigned boot_e820(const GuestMemory *mem, E820Entry *e, unsigned max)
{
	unsigned n = 0;
	uint64_t low = guest_memory_low_end(mem);
#define ADD(a, s, t)                                                                               \
	do {                                                                                       \
		if (n < max)                                                                       \
			e[n] = (E820Entry){ (a), (s), (t) };                                       \
		n++;                                                                               \
	} while (0)
	ADD(0, VMM_MPTABLE, 1);
	ADD(VMM_MPTABLE, VMM_EBDA_END - VMM_MPTABLE, 2);
	if (low > VMM_KERNEL_LOAD)
		ADD(VMM_KERNEL_LOAD, low - VMM_KERNEL_LOAD, 1);
	if (mem->n_regions > 1)
		ADD(mem->regions[1].gpa, mem->regions[1].size, 1);
#undef ADD
	return n < max ? n : max;
}

int boot_write_gdt(GuestMemory *mem)
{
	static const uint64_t gdt[] = {
		0,
		0x00cf9b000000ffffULL, /* 0x08 code32 */
		0x00af9b000000ffffULL, /* 0x10 code64 */
		0x00cf93000000ffffULL, /* 0x18 data */
		0x00008b0000000067ULL, /* 0x20 32-bit TSS (busy), base 0, limit 0x67 */
	};
	return guest_memory_write(mem, VMM_GDT, gdt, sizeof(gdt));
}

int boot_write_page_tables(GuestMemory *mem)
{
	uint8_t *t = guest_memory_ptr(mem, VMM_PML4, 6 * 4096);
	if (!t)
		return -EFAULT;
	memset(t, 0, 6 * 4096);
	put64(t, (VMM_PML4 + 0x1000) | 3);
	for (unsigned i = 0; i < 4; i++)
		put64(t + 0x1000 + 8 * i, (VMM_PML4 + 0x2000 + 0x1000 * i) | 3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put64(t + 0x2000 + 8 * i, (i << 21) | 0x83);
	return 0;
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)(0 - s);
}

int boot_write_mptable(GuestMemory *mem, unsigned n_cpus)
{
	if (n_cpus == 0 || n_cpus > VMM_VCPUS_MAX)
		return -EINVAL;
	size_t size = VMM_EBDA_END - VMM_MPTABLE;
	uint8_t *base = guest_memory_ptr(mem, VMM_MPTABLE, size);
	if (!base)
		return -EFAULT;
	memset(base, 0, size);
	uint8_t *mpf = base, *mpc = base + 16, *p = mpc + 44;
	uint16_t count = 0;
	uint8_t ioapic_id = (uint8_t)n_cpus;

	for (unsigned i = 0; i < n_cpus; i++, count++, p += 20) {
		p[0] = 0;                               /* processor */
		p[1] = (uint8_t)i;                      /* local APIC id */
		p[2] = 0x14;                            /* APIC version */
		p[3] = (uint8_t)(1 | (i == 0 ? 2 : 0)); /* enabled, BSP */
		put32(p + 4, 0x600);                    /* signature: family 6 */
		put32(p + 8, 0x201);                    /* features: FPU, APIC */
	}
	p[0] = 1; /* bus 0: ISA */
	memcpy(p + 2, "ISA   ", 6);
	p += 8, count++;
	p[0] = 2; /* IOAPIC */
	p[1] = ioapic_id;
	p[2] = 0x11;
	p[3] = 1;
	put32(p + 4, 0xfec00000);
	p += 8, count++;
	for (unsigned irq = 0; irq < 16; irq++, p += 8, count++) {
		p[0] = 3; /* I/O interrupt: ISA irq -> IOAPIC pin irq */
		p[1] = 0; /* INT */
		p[4] = 0;
		p[5] = (uint8_t)irq;
		p[6] = ioapic_id;
		p[7] = (uint8_t)irq;
	}
	p[0] = 4; /* local interrupt: ExtINT -> LINT0 of every CPU */
	p[1] = 3;
	p[6] = 0xff;
	p[7] = 0;
	p += 8, count++;
	p[0] = 4; /* NMI -> LINT1 */
	p[1] = 1;
	p[6] = 0xff;
	p[7] = 1;
	p += 8, count++;

	memcpy(mpc, "PCMP", 4);
	put16(mpc + 4, (uint16_t)(p - mpc));
	mpc[6] = 4;
	memcpy(mpc + 8, "LOCALD  ", 8);
	memcpy(mpc + 16, "VMMD        ", 12);
	put16(mpc + 34, count);
	put32(mpc + 36, 0xfee00000);
	mpc[7] = checksum(mpc, (size_t)(p - mpc));

	memcpy(mpf, "_MP_", 4);
	put32(mpf + 4, (uint32_t)(VMM_MPTABLE + 16));
	mpf[8] = 1;
	mpf[9] = 4;
	mpf[10] = checksum(mpf, 16);
	return 0;
}

static int write_cmdline(GuestMemory *mem, const char *cmdline, uint32_t max, const char **why)
{
	size_t n = strlen(cmdline ? cmdline : "");
	if (n + 1 > VMM_CMDLINE_MAX || (max && n > max)) {
		*why = "kernel command line too long";
		return -E2BIG;
	}
	return guest_memory_write(mem, VMM_CMDLINE, cmdline ? cmdline : "", n + 1);
}

static int place_initrd(GuestMemory *mem, const uint8_t *initrd, size_t size, uint64_t lowest,
			uint64_t highest, BootSetup *b, const char **why)
{
	if (!initrd || !size)
		return 0;
	uint64_t top = guest_memory_low_end(mem);
	if (highest && highest + 1 < top)
		top = highest + 1;
	if (size > top || ((top - size) & ~0xfffULL) < lowest) {
		*why = "initrd does not fit in guest memory";
		return -E2BIG;
	}
	uint64_t at = (top - size) & ~0xfffULL;
	int r = guest_memory_write(mem, at, initrd, size);
	if (r < 0) {
		*why = "initrd does not fit in guest memory";
		return -E2BIG;
	}
	b->initrd_gpa = at;
	b->initrd_size = size;
	return 0;
}

static int load_bzimage(GuestMemory *mem, const uint8_t *image, size_t size, const uint8_t *initrd,
			size_t initrd_size, const char *cmdline, BootSetup *b, const char **why)
{
	unsigned setup_sects = image[HDR_SETUP_SECTS] ? image[HDR_SETUP_SECTS] : 4;
	size_t off = (size_t)(setup_sects + 1) * 512;
	size_t kernel_size = size - off;
	uint32_t init_size =
	    get16(image + HDR_VERSION) >= 0x020a ? get32(image + HDR_INIT_SIZE) : 0;
	uint64_t need = kernel_size > init_size ? kernel_size : init_size;
	if (VMM_KERNEL_LOAD + need > guest_memory_low_end(mem) ||
	    guest_memory_write(mem, VMM_KERNEL_LOAD, image + off, kernel_size) < 0) {
		*why = "kernel does not fit in guest memory";
		return -E2BIG;
	}
	b->kernel_end = VMM_KERNEL_LOAD + need;

	uint8_t *bp = guest_memory_ptr(mem, VMM_BOOT_PARAMS, BP_SIZE);
	if (!bp)
		return -EFAULT;
	memset(bp, 0, BP_SIZE);
	/* The setup header runs from 0x1f1 to the end given by the jump at 0x200. */
	size_t hdr_end = 0x202 + image[HDR_JUMP + 1];
	if (hdr_end > BP_E820_TABLE)
		hdr_end = BP_E820_TABLE;
	memcpy(bp + HDR_SETUP_SECTS, image + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;
	bp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	put16(bp + HDR_HEAP_END_PTR, 0xfe00);

	uint32_t cmdline_max = get32(image + HDR_CMDLINE_SIZE);
	int r = write_cmdline(mem, cmdline, cmdline_max ? cmdline_max : 255, why);
	if (r < 0)
		return r;
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)VMM_CMDLINE);
	put32(bp + BP_EXT_CMD_LINE_PTR, 0);

	uint32_t addr_max = get32(image + HDR_INITRD_ADDR_MAX);
	r = place_initrd(mem, initrd, initrd_size, b->kernel_end, addr_max ? addr_max : 0x37ffffff,
			 b, why);
	if (r < 0)
		return r;
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)b->initrd_gpa);
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)b->initrd_size);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(b->initrd_gpa >> 32));
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(b->initrd_size >> 32));

	E820Entry e[8];
	unsigned n = boot_e820(mem, e, 8);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = bp + BP_E820_TABLE + 20 * i;
		put64(p, e[i].addr);
		put64(p + 8, e[i].size);
		put32(p + 16, e[i].type);
	}
	r = boot_write_page_tables(mem);
	if (r < 0)
		return r;
	b->format = KERNEL_BZIMAGE;
	b->entry = VMM_KERNEL_LOAD + 0x200;
	b->info_gpa = VMM_BOOT_PARAMS;
	return 0;
}

static int load_elf_pvh(GuestMemory *mem, const uint8_t *image, size_t size, const uint8_t *initrd,
			size_t initrd_size, const char *cmdline, BootSetup *b, const char **why)
{
	Elf64_Ehdr eh;
	uint64_t entry;
	int r = elf_header(image, size, &eh, why);
	if (r < 0)
		return r;
	if (elf_pvh_entry(image, size, &eh, &entry) < 0) {
		*why = "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)";
		return -ENOEXEC;
	}
	uint64_t end = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, image + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset ||
		    ph.p_filesz > ph.p_memsz) {
			*why = "ELF segment out of the file";
			return -ENOEXEC;
		}
		uint8_t *dst = guest_memory_ptr(mem, ph.p_paddr, ph.p_memsz);
		if (!dst || ph.p_paddr < VMM_KERNEL_LOAD) {
			*why = "kernel does not fit in guest memory";
			return -E2BIG;
		}
		memcpy(dst, image + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
	}
	b->kernel_end = end;
	r = write_cmdline(mem, cmdline, 0, why);
	if (r < 0)
		return r;
	r = place_initrd(mem, initrd, initrd_size, end, 0, b, why);
	if (r < 0)
		return r;

	/* hvm_start_info (56 bytes), module list at +0x80, memory map at +0x100 */
	uint8_t *si = guest_memory_ptr(mem, VMM_PVH_INFO, 0x1000);
	if (!si)
		return -EFAULT;
	memset(si, 0, 0x1000);
	put32(si, PVH_MAGIC);
	put32(si + 4, 1);
	if (b->initrd_size) {
		put32(si + 12, 1);
		put64(si + 16, VMM_PVH_INFO + 0x80);
		put64(si + 0x80, b->initrd_gpa);
		put64(si + 0x88, b->initrd_size);
	}
	put64(si + 24, VMM_CMDLINE);
	E820Entry e[8];
	unsigned n = boot_e820(mem, e, 8);
	put64(si + 40, VMM_PVH_INFO + 0x100);
	put32(si + 48, n);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = si + 0x100 + 24 * i;
		put64(p, e[i].addr);
		put64(p + 8, e[i].size);
		put32(p + 16, e[i].type);
	}
	b->format = KERNEL_ELF_PVH;
	b->entry = entry;
	b->info_gpa = VMM_PVH_INFO;
	return 0;
}

int boot_load(GuestMemory *mem, const uint8_t *image, size_t size, const uint8_t *initrd,
	      size_t initrd_size, const char *cmdline, unsigned n_cpus, BootSetup *ret,
	      const char **ret_why)
{
	const char *why = NULL;
	KernelFormat f;
	BootSetup b = { 0 };
	int r = boot_detect(image, size, &f, &why);
	if (r < 0)
		goto fail;
	if (guest_memory_low_end(mem) < 2 * VMM_KERNEL_LOAD) {
		why = "guest memory too small (need at least 2 MiB)";
		r = -E2BIG;
		goto fail;
	}
	r = boot_write_gdt(mem);
	if (r >= 0)
		r = boot_write_mptable(mem, n_cpus);
	if (r < 0) {
		why = "cannot write the boot tables";
		goto fail;
	}
	if (f == KERNEL_BZIMAGE)
		r = load_bzimage(mem, image, size, initrd, initrd_size, cmdline, &b, &why);
	else
		r = load_elf_pvh(mem, image, size, initrd, initrd_size, cmdline, &b, &why);
	if (r < 0)
		goto fail;
	*ret = b;
	return 0;
fail:
	if (ret_why)
		*ret_why = why ? why : "cannot load the kernel";
	return r;
}

static void segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code64 ? 0 : 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.g = 1,
	};
}

void boot_cpu_state(const BootSetup *b, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	bool lm = b->format == KERNEL_BZIMAGE;
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2;
	regs->rip = b->entry;
	if (lm)
		regs->rsi = b->info_gpa;
	else
		regs->rbx = b->info_gpa;

	segment(&sregs->cs, lm ? BOOT_SEL_CODE64 : BOOT_SEL_CODE32, 0xb, lm);
	segment(&sregs->ds, BOOT_SEL_DATA, 0x3, false);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	sregs->tr = (struct kvm_segment){
		.base = 0, .limit = 0x67, .selector = BOOT_SEL_TSS, .type = 11, .present = 1, .s = 0
	};
	sregs->gdt.base = VMM_GDT;
	sregs->gdt.limit = 5 * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = (sregs->cr0 | 0x1 | 0x10) & ~(0x80000000ULL | 0x40000000ULL | 0x20000000ULL);
	if (lm) {
		sregs->cr0 |= 0x80000000ULL; /* PG */
		sregs->cr3 = VMM_PML4;
		sregs->cr4 |= 0x20;           /* PAE */
		sregs->efer |= 0x100 | 0x400; /* LME | LMA */
	} else {
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
	}
}
