/* SPDX-License-Identifier: MIT */
/*
 * Second vCPU: count processors from the MP table (Intel MultiProcessor Spec 1.4, the
 * table the VMM writes at the top of base memory / the BIOS area), copy the trampoline
 * to 0x8000, send INIT-SIPI-SIPI to the first application processor through the local
 * APIC and wait for it to check in.
 */

#include "guest.h"

#define LAPIC 0xfee00000UL
#define TRAMP 0x8000

extern char ap_trampoline[], ap_trampoline_end[], ap_tramp_cr3[], ap_tramp_stack[];
extern char ap_stack_top[];

static volatile int ap_alive;

static void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC + reg) = v;
}

static uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(LAPIC + reg);
}

static const uint8_t *find_mpf(uint64_t from, uint64_t len)
{
	for (uint64_t a = from; a + 16 <= from + len; a += 16) {
		const uint8_t *p = (const uint8_t *)(uintptr_t)a;
		if (memcmp(p, "_MP_", 4) != 0)
			continue;
		uint8_t sum = 0;
		for (int i = 0; i < 16; i++)
			sum = (uint8_t)(sum + p[i]);
		if (sum == 0)
			return p;
	}
	return NULL;
}

/* Processors in the MP table; *ret_ap = the APIC id of one that is not the BSP. */
static int mp_cpus(uint32_t *ret_ap)
{
	const uint8_t *mpf = find_mpf(0x9fc00, 0x400);
	if (!mpf)
		mpf = find_mpf(0xf0000, 0x10000);
	if (!mpf)
		return -1;
	const uint8_t *t = (const uint8_t *)(uintptr_t) * (const uint32_t *)(mpf + 4);
	if (!t || memcmp(t, "PCMP", 4) != 0)
		return -1;
	uint16_t count = *(const uint16_t *)(t + 34);
	const uint8_t *e = t + 44;
	int cpus = 0;
	for (uint16_t i = 0; i < count; i++) {
		if (e[0] == 0) {
			if (e[3] & 1) {
				cpus++;
				if (!(e[3] & 2))
					*ret_ap = e[1];
			}
			e += 20;
		} else
			e += 8;
	}
	return cpus;
}

static void delay(unsigned n)
{
	for (volatile unsigned i = 0; i < n * 1000; i++)
		__asm__ volatile("pause");
}

void ap_main(void)
{
	uint32_t id = lapic_read(0x20) >> 24;
	puts_("smp: cpu with apic id ");
	put_dec(id);
	puts_(" is up\n");
	__atomic_store_n(&ap_alive, 1, __ATOMIC_RELEASE);
	for (;;)
		__asm__ volatile("cli; hlt");
}

int test_smp(void)
{
	uint32_t ap = 1;
	int cpus = mp_cpus(&ap);
	char buf[8];
	/* cpus= overrides the table (for VMMs that write none, e.g. QEMU's microvm) */
	if (cmdline_get("cpus", buf, sizeof(buf)))
		cpus = (int)parse_num(buf, NULL);
	if (cpus < 0) {
		puts_("smp: no MP table\n");
		return -1;
	}
	puts_("smp: ");
	put_dec((uint64_t)cpus);
	puts_(" cpus\n");
	if (cpus < 2)
		return -1;

	memcpy((void *)TRAMP, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	*(volatile uint64_t *)(TRAMP + (ap_tramp_cr3 - ap_trampoline)) = cr3;
	*(volatile uint64_t *)(TRAMP + (ap_tramp_stack - ap_trampoline)) = (uintptr_t)ap_stack_top;

	lapic_write(0xf0, 0x1ff); /* enable, spurious vector 0xff */
	lapic_write(0x310, ap << 24);
	lapic_write(0x300, 0x4500); /* INIT */
	delay(10000);
	for (int i = 0; i < 2 && !ap_alive; i++) {
		lapic_write(0x310, ap << 24);
		lapic_write(0x300, 0x4600 | (TRAMP >> 12)); /* STARTUP */
		delay(2000);
	}
	for (unsigned i = 0; i < 200000 && !__atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE); i++)
		delay(10);
	if (!ap_alive) {
		puts_("smp: second cpu did not start\n");
		return -1;
	}
	puts_("smp: ok\n");
	return 0;
}
