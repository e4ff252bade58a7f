/* SPDX-License-Identifier: MIT */
/* The 8250/16550A UART register model (National Semiconductor PC16550D data sheet). */

#include <string.h>

#include "vmm-devices.h"

enum {
	RBR_THR = 0,
	IER = 1,
	IIR_FCR = 2,
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7,
};

#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04

void serial_init(Serial *s, const DeviceHost *host)
{
	memset(s, 0, sizeof(*s));
	s->host = host;
	s->mcr = 0x08; /* OUT2 */
}

static void update_irq(Serial *s)
{
	int level = ((s->ier & IER_RDI) && s->rx_len) || ((s->ier & IER_THRI) && s->thr_pending);
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->host && s->host->irq_line)
			s->host->irq_line(s->host->userdata, SERIAL_COM1_IRQ, level);
	}
}

static void rx_push(Serial *s, uint8_t c)
{
	if (s->rx_len == SERIAL_RX_MAX)
		return;
	s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_MAX] = c;
	s->rx_len++;
}

size_t serial_input(Serial *s, const uint8_t *data, size_t len)
{
	size_t n = 0;
	for (; n < len && s->rx_len < SERIAL_RX_MAX; n++)
		rx_push(s, data[n]);
	update_irq(s);
	return n;
}

uint8_t serial_read(Serial *s, uint16_t offset)
{
	uint8_t v = 0;
	switch (offset) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_len) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_MAX;
			s->rx_len--;
		}
		break;
	case IER:
		if (s->lcr & LCR_DLAB)
			return s->dlm;
		return s->ier;
	case IIR_FCR:
		if ((s->ier & IER_RDI) && s->rx_len)
			v = IIR_RDI;
		else if ((s->ier & IER_THRI) && s->thr_pending) {
			v = IIR_THRI;
			s->thr_pending = false; /* reading IIR acknowledges THRE */
		} else
			v = IIR_NONE;
		if (s->fcr & 1)
			v |= 0xc0;
		break;
	case LCR:
		return s->lcr;
	case MCR:
		return s->mcr;
	case LSR:
		v = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
		break;
	case MSR:
		if (s->mcr & MCR_LOOP)
			/* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
			v = (uint8_t)(((s->mcr & 1) << 5) | ((s->mcr & 2) << 3) |
				      ((s->mcr & 4) << 4) | ((s->mcr & 8) << 4));
		else
			v = 0xb0; /* DCD, DSR, CTS */
		break;
	case SCR:
		return s->scr;
	default:
		return 0xff;
	}
	update_irq(s);
	return v;
}

void serial_write(Serial *s, uint16_t offset, uint8_t value)
{
	switch (offset) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = value;
			return;
		}
		if (s->mcr & MCR_LOOP)
			rx_push(s, value);
		else if (s->host && s->host->console_out)
			s->host->console_out(s->host->userdata, &value, 1);
		s->thr_pending = true; /* sent at once: the holding register is empty again */
		break;
	case IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = value;
			return;
		}
		if ((value & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_pending = true;
		s->ier = value & 0x0f;
		break;
	case IIR_FCR:
		s->fcr = value;
		if (value & 2) { /* clear the receive FIFO */
			s->rx_head = s->rx_len = 0;
		}
		break;
	case LCR:
		s->lcr = value;
		return;
	case MCR:
		s->mcr = value & 0x1f;
		break;
	case SCR:
		s->scr = value;
		return;
	default:
		return;
	}
	update_irq(s);
}
