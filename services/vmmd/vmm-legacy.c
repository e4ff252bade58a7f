/* SPDX-License-Identifier: MIT */
/* The i8042 keyboard controller, as far as a VM needs it: the reset line and a keyboard
 * output buffer to inject Ctrl-Alt-Del into. */

#include <string.h>

#include "vmm-devices.h"

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define CMD_READ_CMDBYTE 0x20
#define CMD_WRITE_CMDBYTE 0x60
#define CMD_RESET 0xfe

void i8042_init(I8042 *k, const DeviceHost *host)
{
	memset(k, 0, sizeof(*k));
	k->host = host;
	k->cmd_byte = 0x01; /* keyboard interrupt enabled */
}

static void push(I8042 *k, uint8_t v)
{
	if (k->out_len < sizeof(k->out))
		k->out[(k->out_head + k->out_len++) % sizeof(k->out)] = v;
}

static void kick(I8042 *k)
{
	if (k->out_len && (k->cmd_byte & 1) && k->host && k->host->irq_line) {
		k->host->irq_line(k->host->userdata, I8042_IRQ, 1);
		k->host->irq_line(k->host->userdata, I8042_IRQ, 0);
	}
}

uint8_t i8042_read(I8042 *k, uint16_t port)
{
	if (port == I8042_CMD)
		return STATUS_SYS | (k->out_len ? STATUS_OBF : 0);
	if (port != I8042_DATA || !k->out_len)
		return 0;
	uint8_t v = k->out[k->out_head];
	k->out_head = (k->out_head + 1) % sizeof(k->out);
	k->out_len--;
	kick(k);
	return v;
}

void i8042_write(I8042 *k, uint16_t port, uint8_t value)
{
	if (port == I8042_CMD) {
		k->pending_cmd = 0;
		switch (value) {
		case CMD_RESET:
			if (k->host && k->host->reset)
				k->host->reset(k->host->userdata);
			break;
		case CMD_READ_CMDBYTE:
			push(k, k->cmd_byte);
			break;
		case CMD_WRITE_CMDBYTE:
			k->pending_cmd = value;
			break;
		default:
			break;
		}
		return;
	}
	if (port == I8042_DATA) {
		if (k->pending_cmd == CMD_WRITE_CMDBYTE)
			k->cmd_byte = value;
		else
			push(k, 0xfa); /* ACK whatever the keyboard is told */
		k->pending_cmd = 0;
	}
}

void i8042_ctrl_alt_del(I8042 *k)
{
	/* Ctrl, Alt, Delete make; then breaks, in reverse (scancode set 1, Delete is E0 53). */
	static const uint8_t seq[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	for (size_t i = 0; i < sizeof(seq); i++)
		push(k, seq[i]);
	kick(k);
}
