// SPDX-License-Identifier: GPL-2.0
/*
 * ledger-guest: the smallest guest that can tell whether its RAM survived a
 * live migration. QEMU boots it with -kernel (multiboot v1, 32-bit protected
 * mode, no paging). It keeps a ledger in its RAM, one entry a page, and
 * rewrites the entries generation after generation, forever:
 *
 *	for gen = 1, 2, ...:
 *		for each page i of the ledger:
 *			check page i holds (i, gen - 1) intact
 *			write (i, gen) into page i
 *		report "gen G ok" on the serial port
 *
 * So every page is checked once per generation just before it is
 * rewritten, and a migration that lost a write (a stale page, a page of the
 * wrong generation, a torn page) is caught within one generation: the guest
 * reports "LEDGER BAD ..." and stops. Its position (gen, page) is in
 * registers and in RAM, both carried by a migration; the destination
 * guest goes on from where the source stopped.
 *
 * An entry is spread over the page: a header at offset 0 (magic, index,
 * generation, checksum), a word at 2 KiB and the page's last word, each a
 * hash of (index, generation), so a page copied in part is caught too.
 *
 * The serial port (COM1) gets only whole lines:
 *	ledger start pages N at 0xADDR
 *	gen G ok pages N        (after each generation)
 *	LEDGER BAD page I gen G: <what>
 * and the number of generations and pages written is also kept at
 * LEDGER_STATUS (physical address) for a host to read.
 *
 * Every fourth timer tick (4 ms of guest time) it writes '.' to I/O port
 * 0xe9, QEMU's isa-debugcon if there is one (ignored otherwise): a
 * heartbeat whose longest silence is the blackout the guest saw
 * (tests/tools/heartbeat.c).
 */
#include <stdint.h>

#define MB_MAGIC	0x1BADB002u
#define MB_FLAGS	0x00000000u
#define LEDGER_BASE	0x00400000u	/* 4 MiB: past the kernel, BIOS and stack */
#define LEDGER_STATUS	0x003ff000u	/* status page just below the ledger */
#define PAGE		4096u
#define ENTRY_MAGIC	0x4c454447u	/* "LEDG" */
#define COM1		0x3f8

__attribute__((section(".multiboot"), used, aligned(4)))
static const uint32_t mb_header[3] = {
	MB_MAGIC, MB_FLAGS, (uint32_t)-(MB_MAGIC + MB_FLAGS)
};

__attribute__((used, aligned(16))) static uint8_t stack[16384];

void ledger_main(uint32_t mb_magic, const uint32_t *mb_info);

/*
 * Entry from the multiboot loader: flat 32-bit segments, interrupts off, the
 * loader's GDT (which may be anywhere). Load our own GDT and IDT, then C.
 */
__asm__(".text\n"
	".globl _start\n"
	"_start:\n"
	"	cli\n"
	"	mov $stack + 16384, %esp\n"
	"	push %ebx\n"		/* multiboot info */
	"	push %eax\n"		/* multiboot magic */
	"	lgdt gdt_desc\n"
	"	ljmp $0x08, $1f\n"
	"1:	mov $0x10, %ax\n"
	"	mov %ax, %ds\n"
	"	mov %ax, %es\n"
	"	mov %ax, %ss\n"
	"	mov %ax, %fs\n"
	"	mov %ax, %gs\n"
	"	call ledger_main\n"
	"2:	cli\n"
	"	hlt\n"
	"	jmp 2b\n"
	/* the timer (IRQ 0): count the tick, beat every 4th, end the interrupt */
	".globl irq0\n"
	"irq0:\n"
	"	push %eax\n"
	"	incl ticks\n"
	"	testb $3, ticks\n"
	"	jnz 3f\n"
	"	mov $0x2e, %al\n"
	"	outb %al, $0xe9\n"
	"3:	mov $0x20, %al\n"
	"	outb %al, $0x20\n"
	"	pop %eax\n"
	"	iret\n"
	/* anything else is unexpected: stop */
	".globl trap\n"
	"trap:\n"
	"	cli\n"
	"	hlt\n"
	"	jmp trap\n");

/* null, flat code (0x08), flat data (0x10) */
__attribute__((used, aligned(8))) static const uint64_t gdt[3] = {
	0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull
};

__attribute__((used)) static const struct {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed)) gdt_desc = { sizeof(gdt) - 1, (uint32_t)(uintptr_t)gdt };

volatile uint32_t ticks;
void irq0(void);
void trap(void);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

#define IDT_VECTORS	48
#define IRQ_BASE	0x20	/* the PIC's IRQ 0-15 become vectors 32-47 */
#define PIT_HZ		1193182u

static uint64_t idt[IDT_VECTORS] __attribute__((aligned(8)));

static uint64_t gate(void (*fn)(void))
{
	uint32_t a = (uint32_t)(uintptr_t)fn;

	/* 32-bit interrupt gate, present, ring 0, selector 0x08 */
	return (uint64_t)(a & 0xffff) | (uint64_t)0x08 << 16 |
	       (uint64_t)0x8e00 << 32 | (uint64_t)(a >> 16) << 48;
}

/* IRQ 0 at hz per second, every other interrupt masked. */
static void timer_init(uint32_t hz)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };
	uint32_t div = PIT_HZ / hz;
	unsigned int v;

	for (v = 0; v < IDT_VECTORS; v++)
		idt[v] = gate(v == IRQ_BASE ? irq0 : trap);
	__asm__ volatile("lidt %0" : : "m"(desc));

	outb(0x20, 0x11);		/* PIC: ICW1, edge, cascade, ICW4 */
	outb(0xa0, 0x11);
	outb(0x21, IRQ_BASE);		/* ICW2: vector offsets */
	outb(0xa1, IRQ_BASE + 8);
	outb(0x21, 4);			/* ICW3: slave on IRQ 2 */
	outb(0xa1, 2);
	outb(0x21, 1);			/* ICW4: 8086 mode */
	outb(0xa1, 1);
	outb(0x21, 0xfe);		/* only IRQ 0 */
	outb(0xa1, 0xff);

	outb(0x43, 0x34);		/* PIT channel 0, lo/hi, mode 2 */
	outb(0x40, div & 0xff);
	outb(0x40, div >> 8);
}

/* Sleep until the next timer tick. */
static void wait_tick(void)
{
	uint32_t t = ticks;

	while (ticks == t)
		__asm__ volatile("sti; hlt; cli");
}

static void putc_serial(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
	while (*s)
		putc_serial(*s++);
}

static void putu(uint32_t v, unsigned int base)
{
	char buf[12];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		putc_serial(buf[--n]);
}

/* A 32-bit mix (murmur3's finaliser): any changed input bit changes most outputs. */
static uint32_t mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static uint32_t word_of(uint32_t index, uint32_t gen, uint32_t salt)
{
	return mix(index * 0x9e3779b9u ^ mix(gen + salt));
}

struct entry {
	uint32_t magic;
	uint32_t index;
	uint32_t gen;
	uint32_t sum;
};

static volatile uint32_t *page_at(uint32_t i)
{
	return (volatile uint32_t *)(uintptr_t)(LEDGER_BASE + i * PAGE);
}

static void write_entry(uint32_t i, uint32_t gen)
{
	volatile uint32_t *p = page_at(i);

	p[PAGE / 8] = word_of(i, gen, 1);
	p[PAGE / 4 - 1] = word_of(i, gen, 2);
	p[0] = ENTRY_MAGIC;
	p[1] = i;
	p[2] = gen;
	p[3] = word_of(i, gen, 0);
}

static void bad(uint32_t i, uint32_t gen, const char *what, uint32_t got)
{
	puts_serial("LEDGER BAD page ");
	putu(i, 10);
	puts_serial(" gen ");
	putu(gen, 10);
	puts_serial(": ");
	puts_serial(what);
	puts_serial(" 0x");
	putu(got, 16);
	puts_serial("\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * Page i must hold generation gen. Generation 0 is whatever the firmware
 * left there (SeaBIOS uses RAM below the top for its own tables and
 * scratch): nothing to check.
 */
static void check_entry(uint32_t i, uint32_t gen)
{
	volatile uint32_t *p = page_at(i);

	if (gen == 0)
		return;
	if (p[0] != ENTRY_MAGIC)
		bad(i, gen, "magic", p[0]);
	if (p[1] != i)
		bad(i, gen, "index", p[1]);
	if (p[2] != gen)
		bad(i, gen, "generation", p[2]);
	if (p[3] != word_of(i, gen, 0))
		bad(i, gen, "checksum", p[3]);
	if (p[PAGE / 8] != word_of(i, gen, 1))
		bad(i, gen, "middle word", p[PAGE / 8]);
	if (p[PAGE / 4 - 1] != word_of(i, gen, 2))
		bad(i, gen, "last word", p[PAGE / 4 - 1]);
}

struct status {
	uint32_t magic;		/* ENTRY_MAGIC once running */
	uint32_t pages;		/* ledger pages */
	uint32_t gen;		/* generation being written */
	uint32_t done;		/* generations completed */
};

/* The value of "key=N" in the command line, or def. */
static uint32_t cmdline_value(const char *cmd, const char *key, uint32_t def)
{
	const char *p, *k;
	uint32_t v;

	for (p = cmd; p && *p; p++) {
		if (p != cmd && p[-1] != ' ')
			continue;
		for (k = key; *k && *p == *k; k++, p++)
			;
		if (*k || *p != '=')
			continue;
		for (v = 0, p++; *p >= '0' && *p <= '9'; p++)
			v = v * 10 + (uint32_t)(*p - '0');
		return v;
	}
	return def;
}

void ledger_main(uint32_t mb_magic, const uint32_t *mb_info)
{
	volatile struct status *st = (volatile struct status *)LEDGER_STATUS;
	uint32_t mem_upper_kib, top, pages, gen, i, rate;
	const char *cmd;

	/* flags bit 0: mem_lower/mem_upper valid; upper memory starts at 1 MiB */
	if (mb_magic != 0x2BADB002u || !(mb_info[0] & 1)) {
		puts_serial("ledger: not booted by a multiboot loader\n");
		return;
	}
	cmd = (mb_info[0] & 4) ? (const char *)(uintptr_t)mb_info[4] : 0;
	/* pages written per millisecond (0: as fast as the CPU goes) */
	rate = cmdline_value(cmd, "rate", 4);
	mem_upper_kib = mb_info[2];
	/* the firmware keeps its tables (ACPI, multiboot info) in the top MiB */
	top = 0x100000u + mem_upper_kib * 1024u - 0x100000u;
	if (top <= LEDGER_BASE + 16 * PAGE) {
		puts_serial("ledger: too little memory\n");
		return;
	}
	pages = (top - LEDGER_BASE) / PAGE;
	if (rate)
		timer_init(1000);

	st->magic = ENTRY_MAGIC;
	st->pages = pages;
	st->done = 0;
	puts_serial("ledger start pages ");
	putu(pages, 10);
	puts_serial(" at 0x");
	putu(LEDGER_BASE, 16);
	puts_serial(" rate ");
	putu(rate, 10);
	puts_serial("/ms\n");

	for (gen = 1;; gen++) {
		st->gen = gen;
		for (i = 0; i < pages; i++) {
			check_entry(i, gen - 1);
			write_entry(i, gen);
			if (rate && (i + 1) % rate == 0)
				wait_tick();
		}
		st->done = gen;
		puts_serial("gen ");
		putu(gen, 10);
		puts_serial(" ok pages ");
		putu(pages, 10);
		puts_serial("\n");
	}
}
