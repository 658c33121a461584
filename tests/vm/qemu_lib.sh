# SPDX-License-Identifier: GPL-2.0
# Sourced by tests/vm/qemu_test.sh and tests/vm/bench_qemu.sh, in the test
# VM, after migrate_lib.sh: the ledger guest (tests/qemu/ledger-guest.c) in
# Debian's QEMU, its RAM a region held by dt-migrate hold in the source
# namespace, and dt-migrate receive --qemu starting the incoming QEMU in the
# destination one. Needs $top and $work.

LEDGER=$top/out/tests/ledger-guest.elf
QMP="$PY $top/tests/tools/qmp.py"
SZ=${QEMU_SZ:-32M}
# The machine both QEMUs run: its RAM is memory-backend ram0, which each
# side defines with its own mem-path.
QEMU=(qemu-system-x86_64 -nodefaults -display none -machine pc,accel=tcg,memory-backend=ram0
      -m $SZ -kernel "$LEDGER" -append rate=4 -name ledger,debug-threads=on)

# hb_start NAME: the guest's heartbeat (tests/tools/heartbeat.c) read from
# both QEMUs of run NAME, which hb_args then give isa-debugcon; hb_stop
# writes NAME.hb.json (gap_ms: the blackout the guest saw).
HB_PID=
hb_start() {
	"$top/out/tests/heartbeat" "$work/$1.hb.json" "$work/$1.hb1" "$work/$1.hb2" \
		> "$work/$1.hb.log" 2>&1 &
	HB_PID=$!
	for i in $(seq 100); do [ -p "$work/$1.hb2.out" ] && return 0; sleep 0.1; done
	return 1
}
hb_stop() {
	[ -n "$HB_PID" ] || return 0
	kill $HB_PID 2>/dev/null
	wait $HB_PID 2>/dev/null
	HB_PID=
}
# hb_args NAME N: QEMU N's (1 source, 2 destination) debugcon, if hb_start NAME
hb_args() {
	[ -p "$work/$1.hb$2.out" ] || return 0
	echo "-chardev pipe,id=hb,path=$work/$1.hb$2 -device isa-debugcon,iobase=0xe9,chardev=hb"
}

# The last generation a serial log reports done (0: none).
last_gen() { grep -o 'gen [0-9]* ok' "$1" 2>/dev/null | tail -n 1 | awk '{print $2} END {if (!NR) print 0}'; }
qstatus() { $QMP "$1" query-status 2>/dev/null | jq -r .status; }

# in_cg CMD...: exec CMD in cgroup $QEMU_CG if set (dt-blackout --gap
# watches both QEMUs there); the same process, so $! is CMD's.
in_cg() {
	if [ -n "${QEMU_CG:-}" ]; then
		exec sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$QEMU_CG" "$@"
	fi
	exec "$@"
}

# start_source NAME [QEMU ARGS...]: hold a region and run the ledger guest
# on it in the source namespace, until it has done a generation.
start_source() {
	T=$1
	shift
	# Simple commands, not functions: $! is the process itself (nsenter execs it).
	nsenter --net=/run/netns/$NS_SRC "$MIG" hold --size $SZ > "$work/$T.hold.log" 2>&1 &
	HOLD_PID=$!
	disown $HOLD_PID
	wait_for "$work/$T.hold.log" '^/proc/' 10 || return 1
	REGION=$(head -n 1 "$work/$T.hold.log")
	in_cg nsenter --net=/run/netns/$NS_SRC "${QEMU[@]}" "$@" $(hb_args $T 1) \
		-object memory-backend-file,id=ram0,size=$SZ,mem-path="$REGION",share=on \
		-serial file:"$work/$T.ser1" -qmp unix:"$work/$T.q1",server=on,wait=off \
		> "$work/$T.qemu1.log" 2>&1 &
	SRC_QEMU=$!
	disown $SRC_QEMU
	wait_for "$work/$T.ser1" 'gen 1 ok' 120
}

# start_dest NAME [RECEIVE ARGS...]: dt-migrate receive --qemu, starting
# the incoming QEMU with the received region as its RAM (fd 3).
start_dest() {
	local name=$1
	shift
	start_receiver "$name" --io-timeout 60 "$@" --qemu "$work/$name.q2" --exec "${QEMU[@]}" \
		$(hb_args $name 2) \
		-object memory-backend-file,id=ram0,size=$SZ,mem-path=/proc/self/fd/3,share=on \
		-serial file:"$work/$name.ser2" -qmp unix:"$work/$name.q2",server=on,wait=off \
		-incoming defer || return 1
	# Its QEMU, forked at the reservation, starts in its cgroup.
	[ -z "${QEMU_CG:-}" ] || echo $RECV_PID > "$QEMU_CG/cgroup.procs"
}

qsend() {
	local name=$1
	shift
	in_src timeout 600 "$MIG" send --to "$DST_IP:$PORT" --token-file "$work/token" --io-timeout 60 \
		--qemu "$work/$name.q1" --json "$work/$name.src.json" "$@" \
		> "$work/$name.src.log" 2>&1
}

stop_all() {
	hb_stop
	kill -9 ${SRC_QEMU:-} ${HOLD_PID:-} 2>/dev/null
	pkill -9 -f "ledger,debug-threads=on" 2>/dev/null
	# Gone, so that their regions are too (the module unloads after us).
	for i in $(seq 100); do
		if ! pgrep -f "ledger,debug-threads=on" > /dev/null &&
		   { [ -z "${HOLD_PID:-}" ] || gone $HOLD_PID; }; then
			break
		fi
		sleep 0.1
	done
}

