/* SPDX-License-Identifier: MIT */
/*
 * Entry points of the test guest. The image is linked at 1 MiB:
 *   +0x000  32-bit entry (bzImage code32_start; esi = boot_params)
 *   +0x200  64-bit entry of the Linux boot protocol (rsi = boot_params; the VMM set
 *           up long mode, a GDT and identity page tables)
 *   pvh_start: the PVH entry named by the XEN_ELFNOTE_PHYS32_ENTRY note (32-bit
 *           protected mode, paging off, ebx = hvm_start_info)
 * The 32-bit paths build identity page tables for the low 4 GiB and enter long mode.
 * ap_trampoline is copied to 0x8000 and is where a second vCPU starts (SIPI vector 8).
 */

#define BOOT_BZIMAGE32 1
#define BOOT_BZIMAGE64 2
#define BOOT_PVH 3

	.section .head, "ax"
	.code32
	.globl _start
_start:
	movl $BOOT_BZIMAGE32, %edi
	jmp enter_long_mode32

	.org 0x200
	.code64
	.globl startup_64
startup_64:
	cli
	movq $stack_top, %rsp
	movl $BOOT_BZIMAGE64, %edi
	/* rsi: boot_params */
	call kmain
1:	hlt
	jmp 1b

	.code32
	.globl pvh_start
pvh_start:
	movl %ebx, %esi
	movl $BOOT_PVH, %edi
	/* fall through */

/* edi = boot kind, esi = boot info pointer; both survive into kmain's arguments. */
enter_long_mode32:
	cli
	movl $stack_top, %esp
	/* PML4[0] -> PDPT; PDPT[0..3] -> PD0..3; each PD maps 1 GiB with 2 MiB pages. */
	movl $pml4, %eax
	movl $pdpt, %ebx
	orl $3, %ebx
	movl %ebx, (%eax)
	movl $pdpt, %eax
	movl $pd, %ebx
	orl $3, %ebx
	movl $4, %ecx
2:	movl %ebx, (%eax)
	addl $8, %eax
	addl $4096, %ebx
	loop 2b
	movl $pd, %eax
	movl $0x83, %ebx	/* present, writable, 2 MiB page */
	xorl %edx, %edx		/* high half of the entry (addresses above 4 GiB: none) */
	movl $2048, %ecx
3:	movl %ebx, (%eax)
	movl %edx, 4(%eax)
	addl $8, %eax
	addl $0x200000, %ebx
	loop 3b

	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax		/* PAE */
	movl %eax, %cr4
	movl $0xc0000080, %ecx	/* EFER */
	rdmsr
	orl $0x100, %eax	/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax	/* PG | PE */
	movl %eax, %cr0
	lgdt gdt_desc
	ljmp $0x08, $long_mode64

	.code64
long_mode64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movq $stack_top, %rsp
	movl %edi, %edi
	movl %esi, %esi
	call kmain
4:	hlt
	jmp 4b

/*
 * Second-CPU entry: copied to 0x8000. Real mode at 0x0800:0000; the BSP filled in
 * tramp_cr3 and tramp_stack (offsets below) before sending the SIPI.
 */
	.globl ap_trampoline, ap_trampoline_end, ap_tramp_cr3, ap_tramp_stack
#define TRAMP_BASE 0x8000
#define T(x) ((x) - ap_trampoline + TRAMP_BASE)
	.code16
	.balign 16
ap_trampoline:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl T(tramp_gdt_desc)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $T(tramp32)
	.code32
tramp32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl T(ap_tramp_cr3), %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $0xc0000080, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax
	movl %eax, %cr0
	ljmp $0x18, $T(tramp64)
	.code64
tramp64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movq T(ap_tramp_stack), %rsp
	movabsq $ap_main, %rax
	call *%rax
5:	hlt
	jmp 5b
	.balign 8
ap_tramp_cr3:
	.quad 0
ap_tramp_stack:
	.quad 0
	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00af9a000000ffff	/* 0x18: 64-bit code */
tramp_gdt_desc:
	.word 4 * 8 - 1
	.long T(tramp_gdt)
ap_trampoline_end:

	.section .rodata
	.balign 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
gdt_desc:
	.word 3 * 8 - 1
	.quad gdt

/* The PVH entry note (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY). */
	.section .note.pvh, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 4			/* descsz */
	.long 18		/* type */
	.asciz "Xen"
	.long pvh_start

	.section .bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.globl stack_top, ap_stack_top
	.balign 16
	.skip 16384
stack_top:
	.skip 16384
ap_stack_top:
