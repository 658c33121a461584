# SPDX-License-Identifier: GPL-2.0
#
# dirtytrack: `make help` lists the targets.

DT_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dirtytrack
export DT_CACHE
# KREL=<release> picks the kernel the module is built for (and the test VM
# boots): default, the newest Debian 6.12 headers; e.g. KREL=6.1.0-57-amd64.
KREL_ARG := $(KREL)
KDIR ?= $(shell KREL='$(KREL_ARG)' scripts/kdir.sh)
KREL ?= $(patsubst linux-headers-%,%,$(notdir $(KDIR)))
export KREL
# Debian 12's own kernel, 6.1: make test also runs the core suites on it,
# with a dirtytrack.ko built from a copy of the sources in $(MOD_61).
KDIR_61 = $(shell KREL= scripts/kdir.sh 6.1)
MOD_61 = $(O)/6.1/mod
# Userspace takes the 6.12 uapi (PAGEMAP_SCAN, ...) whatever KREL is.
KDIR_UAPI = $(shell KREL= scripts/kdir.sh 6.12)
SRC := $(DT_CACHE)/src
INSTALL_MOD_PATH ?=
INSTALL_HDR_PATH ?= /usr
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
UCFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude/uapi -Iuserspace/include $(CFLAGS)
TESTCFLAGS := $(UCFLAGS) -I$(SRC)/tools/testing/selftests -Wno-unused-parameter -Wno-sign-compare -Wno-clobbered -pthread

O := out
LIB := $(O)/libdirtytrack.a
LIBS := $(LIB) -lisal -ljson-c
LIB_SRCS := $(wildcard userspace/lib/*.c)
LIB_OBJS := $(patsubst userspace/lib/%.c,$(O)/lib/%.o,$(LIB_SRCS))
HDRS := include/uapi/linux/dirtytrack.h $(wildcard userspace/include/*.h)

VM_TESTS := $(patsubst tests/kselftest/%.c,$(O)/tests/%,$(wildcard tests/kselftest/*.c))
HOST_TESTS := $(patsubst tests/host/%.c,$(O)/host/%,$(wildcard tests/host/*.c))
TOOLS := $(patsubst userspace/tools/%.c,$(O)/tools/%,$(wildcard userspace/tools/*.c))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(O)/tests/%,$(wildcard tests/tools/*.c))

KMOD := dirtytrack.ko

# KERNEL=debug: the VM tests (test, test-vm, vm-run) boot the debug kernel of
# scripts/debug-kernel.sh (KASAN, lockdep, ...) with a dirtytrack.ko built
# against its tree in $(DMOD); ./dirtytrack.ko stays Debian's.
KERNEL ?= stock
DEBUG_DIR := $(DT_CACHE)/debug
DEBUG_KDIR := $(DEBUG_DIR)/linux
DMOD := $(O)/debug/mod
ifeq ($(KERNEL),debug)
KMOD := $(DMOD)/dirtytrack.ko
VM_ENV := DT_KERNEL=debug
module: debug-module
else ifneq ($(KERNEL),stock)
$(error KERNEL must be stock or debug, not '$(KERNEL)')
endif

.PHONY: ensure-deps all bpf module userspace tests deps check checkpatch sparse test test-host \
	test-vm vm-run demo bench bench-smoke install modules_install headers_install clean help need-kdir \
	debug-kernel debug-module module-6.1 dkms-install dkms-uninstall install-udev test-full

all: module userspace bpf tests

# Every build target first installs what is missing (quietly when nothing is).
module userspace bpf tests $(LIB_OBJS) check checkpatch sparse: | ensure-deps
ensure-deps:
	@bash scripts/deps.sh --quiet

print-krel:
	@echo $(KREL)

help:
	@echo 'make [all]          build the module (Kbuild, W=1), the library, tools and tests'
	@echo 'make deps           install what is missing (Debian packages; the 6.12 and 6.1 headers'
	@echo '                    and images unpacked into $$DT_CACHE, default ~/.cache/dirtytrack)'
	@echo 'make demo           live-migrate a 256 MiB dt-guest between two network namespaces'
	@echo '                    in the test VM, stage by stage, with the blackout'
	@echo 'make test           build, run host tests and VM tests (6.12, and the core suites on'
	@echo '                    6.1); last line "N passed, N failed"'
	@echo 'make test-full      make test, then bench_smoke, and load cycles, eBPF tools and DKMS on 6.1'
	@echo 'make module-6.1     dirtytrack.ko for Debian 6.1, in out/6.1/mod/'
	@echo 'make dkms-install   add, build and install the module with DKMS for the running'
	@echo '                    kernel (DKMS_KREL=); make dkms-uninstall removes it'
	@echo 'make debug-kernel   build the debug kernel of the VM tests (KASAN, lockdep, ODEBUG,'
	@echo '                    DEBUG_VM, hung tasks; 20-45 min on 2 cores, then cached) from'
	@echo '                    linux-source-6.12 + tests/vm/debug.config into $$DT_CACHE/debug'
	@echo 'make debug-module   dirtytrack.ko for it, in out/debug/mod/ (needs debug-kernel)'
	@echo 'make test KERNEL=debug  the same tests on the debug kernel (builds it if needed;'
	@echo '                    VM tests about 3x slower, bench_smoke skipped); also test-vm,'
	@echo '                    vm-run, module'
	@echo 'make bench          dirtytrack against uffd-wp, soft-dirty, mprotect and userspace'
	@echo '                     transfer in the test VM (up to 60 min): out/bench/summary.md'
	@echo 'make bench-smoke     the same on tiny sizes (part of make test-full): out/bench-smoke/'
	@echo 'make bench-migrate   dt-migrate blackout by tracker and region size (256M, 1G, 4G;'
	@echo '                     BENCH_SIZES=): out/bench/migrate/summary.md'
	@echo 'make vm-run CMD=..  boot the 6.12 test VM, load dirtytrack.ko, run CMD, check dmesg'
	@echo 'make test-two-hosts two VMs joined by a virtio-net link: dt-migrate between them'
	@echo 'make torture SECONDS=N  the torture test in the VM for N s (default 60; SEED=..)'
	@echo 'make check          checkpatch.pl --strict and sparse on kmod/; fails on any finding'
	@echo 'make fuzz           libFuzzer on the wire reader for FUZZ_SECONDS (default 60)'
	@echo 'make install        modules_install + headers_install (INSTALL_MOD_PATH, DESTDIR)'
	@echo 'variables: KREL=<kernel release, e.g. 6.1.0-57-amd64>  KDIR=<kernel headers dir>'
	@echo '           DT_CACHE=<cache dir>  KERNEL=stock|debug  V=1'

need-kdir:
	@test -n "$(KDIR)" -a -f "$(KDIR)/Module.symvers" || \
		{ echo "error: no kernel headers found for $(or $(KREL_ARG),Debian 6.12) (KDIR='$(KDIR)'): run 'make deps' or set KDIR=" >&2; exit 1; }

deps:
	bash scripts/deps.sh

module: need-kdir
	bash kmod/configure $(KDIR) kmod/dt_config.h
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

# $(call module-copy,DIR,KDIR): dirtytrack.ko built against KDIR (M=) from a
# copy of the sources in DIR, so that ./dirtytrack.ko and kmod/*.o stay those
# for $(KREL).
define module-copy
	@test -f "$(2)/Module.symvers" || { echo "error: no kernel tree in '$(2)': run 'make deps'" >&2; exit 1; }
	@mkdir -p $(1)/kmod $(1)/include
	cp -p Kbuild $(1)/
	cp -p $(filter-out kmod/dt_config.h,$(wildcard kmod/*.c kmod/*.h)) kmod/configure $(1)/kmod/
	cp -pR include/. $(1)/include/
	bash $(1)/kmod/configure $(2) $(1)/kmod/dt_config.h
	$(MAKE) -C $(2) M=$(CURDIR)/$(1) W=1 modules
endef

# The debug kernel, and the module built against its tree.
debug-kernel:
	bash scripts/debug-kernel.sh

debug-module: debug-kernel
	$(call module-copy,$(DMOD),$(DEBUG_KDIR))

# The module for Debian's 6.1, whatever KREL is.
module-6.1: | ensure-deps
	$(call module-copy,$(MOD_61),$(KDIR_61))

userspace: $(LIB) $(TOOLS)

# eBPF: vmlinux.h from the headers' BTF, CO-RE objects, bpftool skeletons.
BPF_OUT := $(O)/bpf
BPF_PROGS := $(patsubst bpf/%.bpf.c,%,$(wildcard bpf/*.bpf.c))
bpf: $(patsubst %,$(BPF_OUT)/%.skel.h,$(BPF_PROGS))

$(BPF_OUT)/vmlinux.h: | need-kdir
	@mkdir -p $(dir $@)
	bpftool btf dump file $(KDIR)/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c $(BPF_OUT)/vmlinux.h $(wildcard bpf/*.h)
	clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I$(BPF_OUT) -Ibpf -c -o $@ $<

$(BPF_OUT)/%.skel.h: $(BPF_OUT)/%.bpf.o
	bpftool gen skeleton $< > $@.tmp && mv $@.tmp $@

$(O)/tools/dt-stat: userspace/tools/dt-stat.c $(BPF_OUT)/dtstat.skel.h bpf/dtstat.h
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -I$(BPF_OUT) -Ibpf -o $@ $< -lbpf -lelf -lz

# The blackout probe's loader, shared by dt-blackout and dt-migrate.
PROBE := $(O)/probe/blackout.o
PROBE_LIBS := -lbpf -lelf -lz
$(PROBE): userspace/probe/blackout.c $(BPF_OUT)/blackout.skel.h bpf/blackout.h $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -I$(BPF_OUT) -Ibpf -c -o $@ $<

$(O)/tools/dt-blackout: userspace/tools/dt-blackout.c $(PROBE)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -Ibpf -o $@ $< $(PROBE) $(PROBE_LIBS) -ljson-c

$(O)/tools/dt-bench: userspace/tools/dt-bench.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -pthread -o $@ $< $(LIBS)

# Every other tool: one C file against the library (dt-guest, ...).
$(O)/tools/%: userspace/tools/%.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -o $@ $< $(LIBS)

$(O)/tools/dt-migrate: userspace/tools/dt-migrate.c $(LIB) $(HDRS) $(PROBE)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -Ibpf -o $@ $< $(PROBE) $(LIBS) -ljson-c -lcrypto -lm $(PROBE_LIBS)

$(O)/lib/%.o: userspace/lib/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -c -o $@ $<

# The 6.12 uapi headers the trackers need (PAGEMAP_SCAN, UFFD_FEATURE_WP_ASYNC:
# newer than bookworm's libc), sanitized by the kernel's own headers_install.sh.
UAPI_612 := $(O)/uapi/linux/fs.h $(O)/uapi/linux/userfaultfd.h
$(O)/uapi/linux/%.h: | need-kdir
	@mkdir -p $(dir $@)
	cd $(KDIR_UAPI) && sh scripts/headers_install.sh ../linux-headers-$(patsubst \
		linux-headers-%-amd64,%,$(notdir $(KDIR_UAPI)))-common/include/uapi/linux/$*.h $(abspath $@)
$(O)/lib/tracker.o $(O)/tools/dt-guest $(O)/tests/punch_workload: $(UAPI_612)
$(O)/lib/tracker.o $(O)/tools/dt-guest $(O)/tests/punch_workload: UCFLAGS += -I$(O)/uapi

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

tests: $(VM_TESTS) $(HOST_TESTS) $(TEST_TOOLS) $(O)/tests/ledger-guest.elf tests/splat/dt_splat.ko

# The QEMU test's guest: a 32-bit multiboot image QEMU boots with -kernel.
$(O)/tests/ledger-guest.elf: tests/qemu/ledger-guest.c tests/qemu/ledger-guest.ld
	@mkdir -p $(dir $@)
	$(CC) -m32 -std=c11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-pic -no-pie \
		-fno-stack-protector -nostdlib -static -Wl,-T,tests/qemu/ledger-guest.ld \
		-Wl,--build-id=none -Wl,--no-warn-rwx-segments -o $@ $<

$(O)/tests/%: tests/tools/%.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -o $@ $< $(LIBS)

$(O)/tests/%: tests/kselftest/%.c $(LIB) $(HDRS) $(wildcard tests/kselftest/*.h)
	@test -f $(SRC)/tools/testing/selftests/kselftest_harness.h || \
		{ echo "error: kselftest_harness.h missing from $(SRC): run 'make deps'" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(TESTCFLAGS) -o $@ $< $(LIBS)

$(O)/host/proto_test: tests/host/proto_test.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TESTCFLAGS) -o $@ $< $(LIBS) -lcrypto

$(O)/host/%: tests/host/%.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TESTCFLAGS) -o $@ $< $(LIBS)

# libFuzzer target of the wire reader (clang; libclang-rt-14-dev has libFuzzer).
# `make fuzz` runs it FUZZ_SECONDS on a copy of tests/fuzz/corpus in
# $(O)/fuzz/corpus; `make fuzz-corpus` regenerates the committed seeds.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := $(filter-out $(CFLAGS),$(UCFLAGS)) -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
.PHONY: fuzz fuzz-corpus

FUZZ_SRCS := userspace/lib/wire.c userspace/lib/dirtytrack.c
$(O)/fuzz/wire_fuzz: tests/fuzz/wire_fuzz.c $(FUZZ_SRCS) $(HDRS) | ensure-deps
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS) -lisal

$(O)/fuzz/gen_corpus: tests/fuzz/gen_corpus.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -o $@ $< $(LIBS)

fuzz: $(O)/fuzz/wire_fuzz
	@mkdir -p $(O)/fuzz/corpus
	cp tests/fuzz/corpus/* $(O)/fuzz/corpus/
	$< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(O)/fuzz/ $(O)/fuzz/corpus

fuzz-corpus: $(O)/fuzz/gen_corpus
	$< tests/fuzz/corpus

tests/splat/dt_splat.ko: tests/splat/splat.c tests/splat/Kbuild | need-kdir
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tests/splat modules

check: checkpatch sparse

checkpatch:
	@test -f $(SRC)/scripts/checkpatch.pl || { echo "error: run 'make deps'" >&2; exit 1; }
	perl $(SRC)/scripts/checkpatch.pl --strict --no-tree --terse --show-types \
		-f $(filter-out %.mod.c kmod/dt_config.h,$(wildcard kmod/*.c kmod/*.h)) include/uapi/linux/dirtytrack.h

sparse: need-kdir
	@rm -f $(O)/sparse.log; mkdir -p $(O)
	$(MAKE) -C $(KDIR) M=$(CURDIR) C=2 CHECK=sparse modules 2>&1 | tee $(O)/sparse.log
	@if grep -E '(warning|error):' $(O)/sparse.log; then \
		echo "sparse: findings above" >&2; exit 1; fi

test: all module-6.1
	$(VM_ENV) bash tests/run.sh

# make test, then what does not fit its 30 minutes (tests/run.sh says what).
test-full: all module-6.1
	DT_TEST_FULL=1 $(VM_ENV) bash tests/run.sh

# Benchmarks in the test VM; results in out/bench/ (see scripts/bench.sh).
bench: all
	bash scripts/bench.sh

# dt-migrate with each tracker and region size in one VM boot (about 30
# minutes): out/bench/migrate/ (results.json, summary.md, blackout.png).
# The VM holds a source and a destination of the largest size.
BENCH_SIZES ?= 256M 1G 4G
BENCH_VM_MB ?= 11264
.PHONY: bench-migrate
bench-migrate: all
	rm -rf out/bench/migrate && mkdir -p out/bench/migrate
	DT_VM_PERF=1 bash tests/vm/run.sh -t 5400 -c 2 -M $(BENCH_VM_MB) -o $(CURDIR)/out/bench/migrate -m $(KMOD) -- \
		bash tests/vm/bench_migrate.sh "$(BENCH_SIZES)" "dirtytrack pagemap-scan soft-dirty"
	python3 scripts/bench-migrate-report.py out/bench/migrate

bench-smoke: all
	bash scripts/bench.sh --smoke

test-host: all
	bash tests/run.sh host

test-vm: all module-6.1
	$(VM_ENV) bash tests/run.sh vm

# The torture test (tests/kselftest/torture_test.c) alone, for SECONDS.
SECONDS ?= 60
.PHONY: torture
torture: module $(O)/tests/torture_test
	DT_TORTURE_SECONDS=$(SECONDS) $(if $(SEED),DT_TORTURE_SEED=$(SEED)) $(VM_ENV) \
		bash tests/vm/run.sh -t $$(($(SECONDS) + 300)) -c 2 -m $(KMOD) -- $(O)/tests/torture_test

# The main job: a live migration of a 256 MiB dt-guest between two network
# namespaces in the test VM (tests/vm/demo.sh); installs what is missing.
.PHONY: demo
demo: all
	$(VM_ENV) bash tests/vm/run.sh -t 900 -c 2 -m $(KMOD) -- bash tests/vm/demo.sh

vm-run: module
	$(VM_ENV) bash tests/vm/run.sh -m $(KMOD) -- $(or $(CMD),$(error CMD= is required, e.g. make vm-run CMD='cat /proc/modules'))

# Two VMs joined by a virtio-net link, dt-migrate from one to the other
# (tests/vm/two_hosts.sh; also the last block of make test); TAP on stdout.
.PHONY: test-two-hosts
test-two-hosts: all
	$(VM_ENV) bash tests/vm/two_hosts.sh -m $(abspath $(KMOD))

# Debian's headers carry neither the signing key nor System.map: install
# unsigned (sign with your MOK if Secure Boot needs it) and run depmod here.
modules_install: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=extra CONFIG_MODULE_SIG_ALL= \
		$(if $(INSTALL_MOD_PATH),INSTALL_MOD_PATH=$(INSTALL_MOD_PATH)) modules_install
	depmod -a $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KREL)

headers_install:
	install -D -m 0644 include/uapi/linux/dirtytrack.h \
		$(DESTDIR)$(INSTALL_HDR_PATH)/include/linux/dirtytrack.h

install: modules_install headers_install install-udev

install-udev:
	install -D -m 0644 udev/60-dirtytrack.rules $(DESTDIR)/etc/udev/rules.d/60-dirtytrack.rules

# DKMS: the module's sources in /usr/src/dirtytrack-$(DKMS_VERSION), added,
# built and installed for DKMS_KREL (default: the running kernel); DKMS then
# rebuilds it for each kernel installed later. Needs root, dkms and the
# kernel's headers (linux-headers-$$(uname -r)).
DKMS_VERSION ?= $(shell git log -1 --format=%cd.%h --date=format:%Y%m%d 2>/dev/null || echo 0)
DKMS_KREL ?= $(shell uname -r)
DKMS_SRC = $(DESTDIR)/usr/src/dirtytrack-$(DKMS_VERSION)
dkms-install:
	@command -v dkms > /dev/null || { echo "error: dkms is not installed: apt-get install dkms" >&2; exit 1; }
	@test -e /lib/modules/$(DKMS_KREL)/build || \
		{ echo "error: no headers for $(DKMS_KREL): apt-get install linux-headers-$(DKMS_KREL)" >&2; exit 1; }
	rm -rf $(DKMS_SRC)
	install -d $(DKMS_SRC)/kmod $(DKMS_SRC)/include/uapi/linux
	install -m 0644 Kbuild $(DKMS_SRC)/
	install -m 0644 $(filter-out kmod/dt_config.h,$(wildcard kmod/*.c kmod/*.h)) $(DKMS_SRC)/kmod/
	install -m 0755 kmod/configure $(DKMS_SRC)/kmod/
	install -m 0644 include/uapi/linux/dirtytrack.h $(DKMS_SRC)/include/uapi/linux/
	sed 's/@VERSION@/$(DKMS_VERSION)/' dkms.conf > $(DKMS_SRC)/dkms.conf
	dkms add -m dirtytrack -v $(DKMS_VERSION)
	dkms build -m dirtytrack -v $(DKMS_VERSION) -k $(DKMS_KREL)
	dkms install -m dirtytrack -v $(DKMS_VERSION) -k $(DKMS_KREL)

# Every version DKMS has of dirtytrack, for every kernel, and their sources.
dkms-uninstall:
	@command -v dkms > /dev/null || { echo "error: dkms is not installed" >&2; exit 1; }
	for v in $$(dkms status -m dirtytrack 2> /dev/null | sed -n 's|^dirtytrack/\([^,:]*\)[,:].*|\1|p' | sort -u); do \
		dkms remove -m dirtytrack -v "$$v" --all || exit 1; \
		rm -rf $(DESTDIR)/usr/src/dirtytrack-"$$v"; \
	done

clean:
	-$(if $(KDIR),$(MAKE) -C $(KDIR) M=$(CURDIR) clean)
	-$(if $(KDIR),$(MAKE) -C $(KDIR) M=$(CURDIR)/tests/splat clean)
	rm -rf $(O) kmod/dt_config.h
