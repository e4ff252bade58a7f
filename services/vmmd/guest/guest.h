/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

void outb(uint16_t port, uint8_t v);
uint8_t inb(uint16_t port);
void puts_(const char *s);
void put_hex(uint64_t v);
void put_dec(uint64_t v);
_Noreturn void poweroff(uint8_t code);
const char *cmdline_get(const char *key, char *buf, size_t size);
const char *cmdline_get_nth(const char *key, unsigned nth, char *buf, size_t size);
uint64_t parse_num(const char *s, const char **end);
void kmain(uint32_t boot, uint64_t info);
void ap_main(void);

void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

int test_disk(void);
int test_rng(void);
int test_vsock(void);
int test_smp(void);
