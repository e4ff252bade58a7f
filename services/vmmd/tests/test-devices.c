/* SPDX-License-Identifier: MIT */
/* The UART and i8042 register models. */

#include "test.h"
#include "vmm-devices.h"

typedef struct Seen {
	char out[256];
	size_t n_out;
	int irq[16];
	int irq_changes;
	int resets;
} Seen;

static void out(void *u, const uint8_t *d, size_t n)
{
	Seen *s = u;
	for (size_t i = 0; i < n && s->n_out < sizeof(s->out) - 1; i++)
		s->out[s->n_out++] = (char)d[i];
}

static void irq(void *u, unsigned line, int level)
{
	Seen *s = u;
	s->irq[line] = level;
	s->irq_changes++;
}

static void reset(void *u)
{
	((Seen *)u)->resets++;
}

TEST(serial_output_and_input)
{
	Seen seen = { 0 };
	DeviceHost h = { .console_out = out, .irq_line = irq, .reset = reset, .userdata = &seen };
	Serial s;
	serial_init(&s, &h);
	ASSERT_TRUE(serial_read(&s, 5) & 0x20); /* THR empty */
	for (const char *p = "hi\n"; *p; p++)
		serial_write(&s, 0, (uint8_t)*p);
	ASSERT_STREQ(seen.out, "hi\n");

	/* input without interrupts enabled: data ready, no IRQ */
	ASSERT_EQ(serial_input(&s, (const uint8_t *)"ab", 2), 2);
	ASSERT_TRUE(serial_read(&s, 5) & 1);
	ASSERT_EQ(seen.irq[SERIAL_COM1_IRQ], 0);
	/* enable receive interrupts: the line goes up, IIR says "data" */
	serial_write(&s, 1, 0x01);
	ASSERT_EQ(seen.irq[SERIAL_COM1_IRQ], 1);
	ASSERT_EQ(serial_read(&s, 2) & 0x0f, 0x04);
	ASSERT_EQ(serial_read(&s, 0), 'a');
	ASSERT_EQ(serial_read(&s, 0), 'b');
	ASSERT_EQ(seen.irq[SERIAL_COM1_IRQ], 0);
	ASSERT_FALSE(serial_read(&s, 5) & 1);
	ASSERT_EQ(serial_read(&s, 2) & 0x0f, 0x01); /* no interrupt pending */

	/* THR-empty interrupt: raised when enabled, acknowledged by reading IIR */
	serial_write(&s, 1, 0x02);
	ASSERT_EQ(seen.irq[SERIAL_COM1_IRQ], 1);
	ASSERT_EQ(serial_read(&s, 2) & 0x0f, 0x02);
	ASSERT_EQ(seen.irq[SERIAL_COM1_IRQ], 0);
}

TEST(serial_dlab_scratch_loopback)
{
	Seen seen = { 0 };
	DeviceHost h = { .console_out = out, .irq_line = irq, .userdata = &seen };
	Serial s;
	serial_init(&s, &h);
	serial_write(&s, 3, 0x80); /* DLAB */
	serial_write(&s, 0, 0x01);
	serial_write(&s, 1, 0x00);
	ASSERT_EQ(serial_read(&s, 0), 0x01);
	serial_write(&s, 3, 0x03);
	ASSERT_EQ(seen.n_out, 0); /* divisor writes are not output */
	serial_write(&s, 7, 0x5a);
	ASSERT_EQ(serial_read(&s, 7), 0x5a);
	/* loopback: output comes back as input, MSR mirrors MCR */
	serial_write(&s, 4, 0x10 | 0x0f);
	ASSERT_EQ(serial_read(&s, 6) & 0xf0, 0xf0);
	serial_write(&s, 0, 'x');
	ASSERT_EQ(seen.n_out, 0);
	ASSERT_EQ(serial_read(&s, 0), 'x');
	serial_write(&s, 4, 0x08);
	ASSERT_EQ(serial_read(&s, 6), 0xb0);
	/* the receive FIFO is bounded */
	static uint8_t flood[SERIAL_RX_MAX + 100];
	ASSERT_EQ(serial_input(&s, flood, sizeof(flood)), SERIAL_RX_MAX);
	serial_write(&s, 2, 0x03); /* FIFO enable + clear receive FIFO */
	ASSERT_FALSE(serial_read(&s, 5) & 1);
	ASSERT_EQ(serial_read(&s, 2) & 0xc0, 0xc0);
}

TEST(i8042)
{
	Seen seen = { 0 };
	DeviceHost h = { .irq_line = irq, .reset = reset, .userdata = &seen };
	I8042 k;
	i8042_init(&k, &h);
	ASSERT_FALSE(i8042_read(&k, I8042_CMD) & 1);
	i8042_ctrl_alt_del(&k);
	ASSERT_TRUE(seen.irq_changes >= 2); /* an edge on IRQ 1 */
	ASSERT_TRUE(i8042_read(&k, I8042_CMD) & 1);
	uint8_t sc[8];
	for (int i = 0; i < 8; i++)
		sc[i] = i8042_read(&k, I8042_DATA);
	ASSERT_EQ(sc[0], 0x1d);
	ASSERT_EQ(sc[3], 0x53);
	ASSERT_FALSE(i8042_read(&k, I8042_CMD) & 1);
	i8042_write(&k, I8042_CMD, 0x20); /* read command byte */
	ASSERT_EQ(i8042_read(&k, I8042_DATA), 0x01);
	ASSERT_EQ(seen.resets, 0);
	i8042_write(&k, I8042_CMD, 0xfe);
	ASSERT_EQ(seen.resets, 1);
}

TEST_MAIN();
