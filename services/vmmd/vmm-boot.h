/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * x86-64 boot: recognising and loading a kernel into guest memory, and the register
 * state the boot CPU starts with. Sans-KVM (takes bytes and a GuestMemory, fills in
 * struct kvm_regs/kvm_sregs) so the unit tests run without /dev/kvm.
 *
 * Two ways in:
 *  - bzImage, Linux boot protocol >= 2.12 with XLF_KERNEL_64: the protected-mode part is
 *    loaded at 1 MiB, a zero page (boot_params) with the setup header, e820 map, command
 *    line and initrd is built at VMM_BOOT_PARAMS, and the CPU starts in long mode
 *    (GDT and identity page tables for the low 4 GiB written by us) at load + 0x200
 *    with rsi = the zero page (Documentation/arch/x86/boot.rst, "64-bit boot protocol").
 *  - ELF vmlinux with a PVH note (XEN_ELFNOTE_PHYS32_ENTRY): PT_LOAD segments at their
 *    physical addresses, an hvm_start_info at VMM_PVH_INFO, and the CPU starts in 32-bit
 *    protected mode, paging off, ebx = the start info (xen/arch-x86/hvm/start_info.h).
 *
 * Guest physical layout below 1 MiB:
 *   0x0500 GDT   0x6000 hvm_start_info (+ module list, memory map)   0x7000 boot_params
 *   0x9000 PML4, 0xa000 PDPT, 0xb000-0xefff four PDs (2 MiB pages, low 4 GiB)
 *   0x20000 command line   0x9fc00 MP table (reserved in the e820 map)   0x100000 kernel
 */

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm-memory.h"

#define VMM_GDT 0x500ULL
#define VMM_PVH_INFO 0x6000ULL
#define VMM_BOOT_PARAMS 0x7000ULL
#define VMM_PML4 0x9000ULL
#define VMM_CMDLINE 0x20000ULL
#define VMM_CMDLINE_MAX 4096
#define VMM_MPTABLE 0x9fc00ULL
#define VMM_EBDA_END 0xa0000ULL
#define VMM_KERNEL_LOAD 0x100000ULL
#define VMM_VCPUS_MAX 32

#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS 0x20

typedef enum KernelFormat {
	KERNEL_BZIMAGE,
	KERNEL_ELF_PVH,
	_KERNEL_FORMAT_MAX,
	_KERNEL_FORMAT_INVALID = -EINVAL,
} KernelFormat;

const char *kernel_format_to_string(KernelFormat f);

/*
 * What a kernel image is. -ENOEXEC with a one-line reason in ret_why (static string)
 * when it is neither a usable bzImage nor an x86-64 ELF with a PVH note.
 */
int boot_detect(const uint8_t *image, size_t size, KernelFormat *ret, const char **ret_why);

typedef struct BootSetup {
	KernelFormat format;
	uint64_t entry;    /* rip */
	uint64_t info_gpa; /* rsi (boot_params) or ebx (hvm_start_info) */
	uint64_t kernel_end;
	uint64_t initrd_gpa, initrd_size;
} BootSetup;

/*
 * Load `image` (+ optional initrd) and write the boot structures, the command line, the
 * e820 map, the MP table for n_cpus and, for bzImage, the page tables and GDT. Errors
 * (-ENOEXEC, -E2BIG for what does not fit in guest memory or a too long command line)
 * come with a one-line reason in ret_why.
 */
int boot_load(GuestMemory *mem, const uint8_t *image, size_t size, const uint8_t *initrd,
	      size_t initrd_size, const char *cmdline, unsigned n_cpus, BootSetup *ret,
	      const char **ret_why);

/* The e820 map (type 1 RAM, 2 reserved) of this memory; returns the entry count. */
typedef struct E820Entry {
	uint64_t addr, size;
	uint32_t type;
} E820Entry;
unsigned boot_e820(const GuestMemory *mem, E820Entry *entries, unsigned max);

/* Intel MP table (spec 1.4) at VMM_MPTABLE: n_cpus processors, one IOAPIC, ISA IRQs. */
int boot_write_mptable(GuestMemory *mem, unsigned n_cpus);

/* GDT at VMM_GDT and identity page tables at VMM_PML4. */
int boot_write_gdt(GuestMemory *mem);
int boot_write_page_tables(GuestMemory *mem);

/* Register state of the boot CPU for this setup (sregs are modified, not replaced). */
void boot_cpu_state(const BootSetup *b, struct kvm_regs *regs, struct kvm_sregs *sregs);
