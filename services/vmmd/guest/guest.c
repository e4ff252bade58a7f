/* SPDX-License-Identifier: MIT */
/*
 * The vmmd test guest: a freestanding x86-64 kernel small enough to read in one sitting.
 * The kernel command line picks what it does (`test=NAME`, see README.md); it reports on
 * COM1 and powers off by writing its exit code to the debug-exit port (0xf4).
 */

#include "guest.h"

#define COM1 0x3f8
#define EXIT_PORT 0xf4

static char cmdline[1024];
static volatile int print_lock;

void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void lock(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause");
}

static void unlock(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static void uart_putc(char c)
{
	if (c == '\n')
		uart_putc('\r');
	while (!(inb(COM1 + 5) & 0x20))
		__asm__ volatile("pause");
	outb(COM1, (uint8_t)c);
}

void puts_(const char *s)
{
	lock();
	while (*s)
		uart_putc(*s++);
	unlock();
}

void put_hex(uint64_t v)
{
	char b[19];
	b[0] = '0';
	b[1] = 'x';
	for (int i = 0; i < 16; i++)
		b[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
	b[18] = 0;
	puts_(b);
}

void put_dec(uint64_t v)
{
	char b[21];
	int i = 20;
	b[i] = 0;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(b + i);
}

_Noreturn void poweroff(uint8_t code)
{
	outb(EXIT_PORT, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dd = d;
	const uint8_t *ss = s;
	while (n--)
		*dd++ = *ss++;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *dd = d;
	while (n--)
		*dd++ = (uint8_t)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* The value of `key=` on the command line, copied into buf; NULL when absent. */
const char *cmdline_get(const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - w) > kl && memcmp(w, key, kl) == 0 && w[kl] == '=') {
			size_t n = (size_t)(p - w) - kl - 1;
			if (n >= size)
				n = size - 1;
			memcpy(buf, w + kl + 1, n);
			buf[n] = 0;
			return buf;
		}
	}
	return NULL;
}

/* The n-th value of `key=` (several virtio_mmio.device= entries). */
const char *cmdline_get_nth(const char *key, unsigned nth, char *buf, size_t size)
{
	size_t kl = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - w) > kl && memcmp(w, key, kl) == 0 && w[kl] == '=' && nth-- == 0) {
			size_t n = (size_t)(p - w) - kl - 1;
			if (n >= size)
				n = size - 1;
			memcpy(buf, w + kl + 1, n);
			buf[n] = 0;
			return buf;
		}
	}
	return NULL;
}

static int streq(const char *a, const char *b)
{
	return a && b && strlen(a) == strlen(b) && memcmp(a, b, strlen(a)) == 0;
}

uint64_t parse_num(const char *s, const char **end)
{
	uint64_t v = 0;
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (end)
		*end = s;
	return v;
}

static void copy_cmdline(uint64_t pa)
{
	const char *s = (const char *)(uintptr_t)pa;
	size_t i = 0;
	if (pa)
		for (; s[i] && i < sizeof(cmdline) - 1; i++)
			cmdline[i] = s[i];
	cmdline[i] = 0;
}

static void test_echo(void)
{
	char line[128];
	size_t n = 0;
	puts_("echo: ready\n");
	for (;;) {
		while (!(inb(COM1 + 5) & 1))
			__asm__ volatile("pause");
		char c = (char)inb(COM1);
		if (c == '\r' || c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = 0;
	puts_("echo: got '");
	puts_(line);
	puts_("'\n");
	poweroff(streq(line, "quit") ? 0 : (uint8_t)n);
}

/* Waits for a Ctrl-Alt-Del through the i8042 (a graceful StopVm), then powers off. */
static void test_wait(void)
{
	puts_("wait: idle until stopped\n");
	for (;;) {
		if (inb(0x64) & 1) {
			uint8_t sc = inb(0x60);
			if (sc == 0x53 || sc == 0xd3) { /* Delete make/break */
				puts_("wait: ctrl-alt-del, powering off\n");
				poweroff(0);
			}
		}
		__asm__ volatile("pause");
	}
}

static void test_triple(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idt = { 0, 0 };
	puts_("triple: faulting\n");
	__asm__ volatile("lidt %0; int3" : : "m"(idt));
}

void kmain(uint32_t boot, uint64_t info)
{
	const char *how = "?";
	if (boot == 3) {
		/* hvm_start_info: magic, version, flags, nr_modules, modlist, cmdline_paddr */
		const uint32_t *si = (const uint32_t *)(uintptr_t)info;
		if (si[0] == 0x336ec578)
			copy_cmdline(*(const uint64_t *)(uintptr_t)(info + 24));
		how = "pvh";
	} else {
		/* boot_params: hdr.cmd_line_ptr at 0x228, ext_cmd_line_ptr at 0x0c8 */
		uint64_t p = *(const uint32_t *)(uintptr_t)(info + 0x228) |
			     (uint64_t) * (const uint32_t *)(uintptr_t)(info + 0x0c8) << 32;
		copy_cmdline(p);
		how = boot == 1 ? "bzimage32" : "bzimage64";
	}
	puts_("locald-test-guest: hello from ");
	puts_(how);
	puts_("\ncmdline: ");
	puts_(cmdline);
	puts_("\n");

	char t[32], e[16];
	const char *test = cmdline_get("test", t, sizeof(t));
	uint8_t code = 0;
	if (cmdline_get("exit", e, sizeof(e)))
		code = (uint8_t)parse_num(e, NULL);

	if (!test || streq(test, "hello"))
		poweroff(code);
	if (streq(test, "echo"))
		test_echo();
	if (streq(test, "wait"))
		test_wait();
	if (streq(test, "spin")) {
		puts_("spin: forever, interrupts off\n");
		for (;;)
			__asm__ volatile("cli");
	}
	if (streq(test, "triple"))
		test_triple();
	if (streq(test, "disk"))
		poweroff(test_disk() < 0 ? 1 : code);
	if (streq(test, "rng"))
		poweroff(test_rng() < 0 ? 1 : code);
	if (streq(test, "vsock"))
		poweroff(test_vsock() < 0 ? 1 : code);
	if (streq(test, "smp"))
		poweroff(test_smp() < 0 ? 1 : code);
	puts_("unknown test\n");
	poweroff(125);
}
