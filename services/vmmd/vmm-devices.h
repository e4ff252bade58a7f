/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The legacy devices on the I/O port bus, sans-I/O: each is a register model that calls
 * back for what leaves it (console bytes, interrupt line changes, a reset or power-off
 * request). The caller serialises access (the worker holds one lock for the port bus).
 *
 *   COM1 0x3f8-0x3ff, IRQ 4   8250/16550A UART: output, input FIFO, interrupts, loopback
 *   0x60, 0x64, IRQ 1        i8042: reset line (0xfe to 0x64), a keyboard output buffer
 *                            for injected scancodes (Ctrl-Alt-Del for a graceful stop)
 *   0xf4                     debug exit: writing byte N powers the VM off with exit code
 *                            N (like QEMU's isa-debug-exit, but the code is N itself)
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RX_MAX 65536
#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define I8042_IRQ 1
#define DEBUG_EXIT_PORT 0xf4

typedef struct DeviceHost {
	void (*console_out)(void *userdata, const uint8_t *data, size_t len);
	void (*irq_line)(void *userdata, unsigned irq, int level);
	void (*reset)(void *userdata);
	void (*poweroff)(void *userdata, int code);
	void *userdata;
} DeviceHost;

typedef struct Serial {
	const DeviceHost *host;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_pending; /* THR-empty interrupt not yet acknowledged */
	int irq_level;
	uint8_t rx[SERIAL_RX_MAX];
	size_t rx_head, rx_len;
} Serial;

void serial_init(Serial *s, const DeviceHost *host);
uint8_t serial_read(Serial *s, uint16_t offset);
void serial_write(Serial *s, uint16_t offset, uint8_t value);
/* Queue console input; returns how many bytes fit. */
size_t serial_input(Serial *s, const uint8_t *data, size_t len);

typedef struct I8042 {
	const DeviceHost *host;
	uint8_t out[16];
	size_t out_head, out_len;
	uint8_t cmd_byte;
	uint8_t pending_cmd;
} I8042;

void i8042_init(I8042 *k, const DeviceHost *host);
uint8_t i8042_read(I8042 *k, uint16_t port);
void i8042_write(I8042 *k, uint16_t port, uint8_t value);
/* Queue the scancodes of Ctrl-Alt-Del (set 1) and raise IRQ 1. */
void i8042_ctrl_alt_del(I8042 *k);
