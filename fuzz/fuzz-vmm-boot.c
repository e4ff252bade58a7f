/* SPDX-License-Identifier: MIT */
/* vmmd's kernel loader on untrusted images: detection, then loading into guest memory
 * (bzImage setup header, ELF program headers and notes). */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm-boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[24 << 20];
	static GuestMemory *mem;
	static const uint8_t initrd[8192] = { 1 };
	if (!mem && guest_memory_wrap(ram, sizeof(ram), &mem) < 0)
		return 0;
	KernelFormat f;
	const char *why = NULL;
	if (boot_detect(data, size, &f, &why) < 0)
		return 0;
	BootSetup b;
	(void)boot_load(mem, data, size, initrd, sizeof(initrd), "console=ttyS0", 2, &b, &why);
	return 0;
}
