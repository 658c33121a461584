#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dt-guest on the host, with --memfd: copies of its region taken while it is
# stopped (kill -STOP) verify, a resumed copy carries on, and mutants (a
# corrupted, stale, lost or unwritten page, a bad superblock, a torn page
# the superblock does not excuse) fail with exit 1 and the right reason. TAP.
set -u
cd "$(dirname "$0")/../.."
G=$PWD/out/tools/dt-guest
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. tests/host/tap.sh
echo "TAP version 13"
echo "1..30"

# ok DESC STATUS [LOG]: one TAP line; on failure LOG's tail as diagnostics
ok() { tap_result "$@"; }

# expect DESC RC REGEX LOG: the last command exited RC ($rc) and LOG has REGEX
expect() {
	[ "$rc" = "$2" ] && grep -qE -e "$3" "$4"
	local st=$?
	[ $st = 0 ] || echo "exit $rc, wanted $2; wanted /$3/" >>"$4"
	ok "$1" $st "$4"
}

# guest LOG ARGS...: run dt-guest to completion; $rc gets its status
guest() {
	local log=$1
	shift
	timeout 60 "$G" "$@" >"$log" 2>&1
	rc=$?
}

# wait_for FILE: until it exists (10 s at most)
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# snapshot PID REGION COPY: stop PID, copy its region, let it go on.
# kill returns before the signal lands: wait for the stopped state.
snapshot() {
	local i st=
	kill -STOP "$1" || return 1
	for ((i = 0; i < 500; i++)); do
		st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
		[ "$st" = T ] && break
		sleep 0.01
	done
	[ "$st" = T ] && cat "$2" >"$3"
	local r=$?
	kill -CONT "$1"
	return $r
}

# Region surgery in Python (layout: userspace/tools/dt-guest.c).
cat >"$tmp/region.py" <<'EOF'
import struct, sys

PS, M = 4096, (1 << 64) - 1
NONE = M

def mix64(z):
    z = (z + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)

CRC = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    CRC.append(c)

def crc32c(data):
    c = 0xffffffff
    for b in data:
        c = CRC[(c ^ b) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff

def build_page(seed, p, gen):		# dt-guest.c's build_page()
    if gen == 0:
        return bytearray(PS)
    x, words = mix64(seed ^ mix64(p ^ mix64(gen))), []
    for _ in range((PS - 32) // 8):
        x = (x + 0x9e3779b97f4a7c15) & M
        words.append(mix64(x))
    pg = bytearray(struct.pack('<QQQII', 0x3145474150475444, p, gen, 0, 0))
    pg += struct.pack('<%dQ' % len(words), *words)
    struct.pack_into('<I', pg, 24, crc32c(pg))
    return pg

class Region:
    def __init__(self, path):
        self.path = path
        self.b = bytearray(open(path, 'rb').read())
        (self.lp,) = struct.unpack_from('<I', self.b, 12)
        (self.wss, self.seed, self.step, self.ipage, self.igen,
         self.istep) = struct.unpack_from('<6Q', self.b, 24)
        self.ledger = list(struct.unpack_from('<%dI' % self.wss, self.b, PS))

    def off(self, p):
        return (1 + self.lp + p) * PS

    def page(self, p):
        return self.b[self.off(p):self.off(p) + PS]

    def set_page(self, p, data):
        self.b[self.off(p):self.off(p) + PS] = data

    def set_inflight(self, page, gen, step):
        struct.pack_into('<3Q', self.b, 48, page, gen, step)

    def save(self):
        open(self.path, 'wb').write(self.b)

def main(cmd, path, *args):
    r = Region(path)
    if cmd == 'written':	# a complete page of generation > 0 [older in OLD too]
        old = Region(args[0]) if args else None
        for i in range(r.wss):
            p = (i + r.wss // 2) % r.wss	# not page 0: offsets matter
            if p == r.ipage or r.ledger[p] == 0:
                continue
            if old and (p == old.ipage or not 0 < old.ledger[p] < r.ledger[p]):
                continue
            print(p, r.ledger[p], old.ledger[p] if old else '')
            return
        sys.exit('no such page')
    elif cmd == 'unwritten':	# a page of generation 0
        print(next(p for p in range(r.wss) if r.ledger[p] == 0 and p != r.ipage))
    elif cmd == 'step':
        print(r.step)
    elif cmd == 'xor':		# xor byte OFF of page P with 0x5a
        p, off = int(args[0]), int(args[1])
        r.b[r.off(p) + off] ^= 0x5a
    elif cmd == 'zero':		# page P lost: zeros
        r.set_page(int(args[0]), bytes(PS))
    elif cmd == 'splice':	# page P from OLD
        p = int(args[1])
        r.set_page(p, Region(args[0]).page(p))
    elif cmd == 'newsb':	# the superblock of NEW over this older region
        r.b[:PS] = Region(args[0]).b[:PS]
    elif cmd == 'sb':		# byte OFF of the superblock xor 0xff
        r.b[int(args[0])] ^= 0xff
    elif cmd == 'inflight':	# freeze a clean region inside step S's write
        mode = args[0]
        s = r.step
        p = mix64(r.seed ^ s) % r.wss
        g = r.ledger[p] + 1
        r.set_inflight(p, g, s)
        old, new = r.page(p), build_page(r.seed, p, g)
        assert old == build_page(r.seed, p, g - 1), 'the page is not generation g - 1'
        if mode in ('torn', 'ledger'):	# every other 64 bytes written
            for i in range(0, PS, 128):
                old[i:i + 64] = new[i:i + 64]
            r.set_page(p, old)
        if mode == 'ledger':		# ...yet the ledger already says g
            struct.pack_into('<I', r.b, PS + 4 * p, g)
        if mode == 'counted':		# written and counted, step not yet
            r.set_page(p, new)
            struct.pack_into('<I', r.b, PS + 4 * p, g)
        if mode == 'stale':		# page p, complete, from an older copy
            a = Region(args[1])
            assert p != a.ipage and 0 < a.ledger[p] < g - 1, 'no older page'
            r.set_page(p, a.page(p))
        print(p)
    else:
        sys.exit('bad command ' + cmd)
    r.save()

main(*sys.argv[1:])
EOF
py=$(python3 -c 'import sys; print(sys.executable)')	# not pyenv's slow shim
region() { "$py" "$tmp/region.py" "$@"; }

if ! make -s out/tools/dt-guest >"$tmp/build.log" 2>&1; then
	ok "build dt-guest" 1 "$tmp/build.log"
	exit 1
fi

# ---- the manual and the usage errors
guest "$tmp/help" --help
st=0
[ "$rc" = 0 ] || st=1
for w in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' EXAMPLES --size --wss --rate \
	--seed --duration --memfd --region-out --status-file --resume --verify-only; do
	grep -q -- "$w" "$tmp/help" || { echo "--help lacks '$w'" >>"$tmp/help"; st=1; }
done
ok "--help exits 0 and reads like a man page, with every option" $st "$tmp/help"
guest "$tmp/log" --bogus
expect "an unknown option exits 2" 2 "unrecognized option.*--bogus" "$tmp/log"
guest "$tmp/log" --memfd --size 5000
expect "a size not a multiple of 4096 exits 2" 2 "bad --size '5000'" "$tmp/log"
guest "$tmp/log" --resume --seed 3
expect "--resume refuses --seed (it is in the superblock): exit 2" 2 \
	"--seed is read from" "$tmp/log"
guest "$tmp/log" --memfd --size 16K --wss 3
expect "a --wss that does not fit exits 2" 2 "at most 2 data pages" "$tmp/log"
DIRTYTRACK_DEV=$tmp/nodev guest "$tmp/log" --size 1M --duration 1
expect "no device: exit 3, saying which and why" 3 \
	"open $tmp/nodev: No such file or directory" "$tmp/log"
guest "$tmp/log" --resume --verify-only
expect "--resume without fd 3: exit 3" 3 "fd 3: Bad file descriptor" "$tmp/log"

# ---- a run with --duration ends by itself
guest "$tmp/log" --memfd --size 4M --rate 0 --duration 1 --region-out "$tmp/r1"
st=1
grep -qE '^dt-guest: pid [0-9]+ region /proc/[0-9]+/fd/[0-9]+ size 4194304 wss 1022$' "$tmp/log" &&
	grep -qE '^dt-guest: stopped at step [1-9][0-9]*$' "$tmp/log" &&
	[ "$(cat "$tmp/r1")" = "$(sed -n 's/.* region \([^ ]*\) .*/\1/p' "$tmp/log")" ] && st=0
[ "$rc" = 0 ] || st=1
ok "--duration 1 --rate 0: the pid line, --region-out, exit 0 at 'stopped at step N'" $st "$tmp/log"

# ---- copies of a running guest, taken while it is stopped
"$G" --memfd --size 4M --rate 0 --duration 60 --region-out "$tmp/r" >"$tmp/live" 2>&1 &
pid=$!
pids+=($pid)
st=1
if wait_for "$tmp/r"; then
	sleep 0.2
	snapshot $pid "$(cat "$tmp/r")" "$tmp/A" && sleep 0.3 &&
		snapshot $pid "$(cat "$tmp/r")" "$tmp/B" && st=0
fi
kill -TERM $pid
wait $pid
rc=$?
[ $st = 0 ] || echo "could not copy the region" >>"$tmp/live"
expect "SIGTERM stops a running guest: exit 0, 'stopped at step N'" 0 \
	'^dt-guest: stopped at step [1-9][0-9]*$' "$tmp/live"
guest "$tmp/log" --resume --verify-only 3<"$tmp/A"
expect "a copy taken at SIGSTOP verifies (read-only fd)" 0 \
	'^dt-guest: verify OK: 102[12] pages checked, step [1-9][0-9]*$' "$tmp/log"
guest "$tmp/log" --resume --verify-only 3<>"$tmp/B"
expect "a later copy verifies too (read-write fd)" 0 \
	'^dt-guest: verify OK: 102[12] pages checked, step [1-9][0-9]*$' "$tmp/log"

# ---- a resumed copy finishes the write in flight and carries on
cp "$tmp/B" "$tmp/C"
sb=$(region step "$tmp/B")
guest "$tmp/log" --resume --rate 0 --duration 1 3<>"$tmp/C"
sc=$(sed -n 's/^dt-guest: stopped at step //p' "$tmp/log")
[ -n "$sc" ] && [ "$sc" -gt "$sb" ] || rc="$rc, stopped at step ${sc:-?}"
expect "--resume verifies, then carries on from step $sb: exit 0, further" 0 \
	"^dt-guest: verify OK: 102[12] pages checked, step $sb\$" "$tmp/log"
guest "$tmp/log" --resume --verify-only 3<"$tmp/C"
expect "the region it left verifies, at the step it stopped at" 0 \
	"^dt-guest: verify OK: 1022 pages checked, step ${sc:-x}\$" "$tmp/log"

# ---- mutants of that clean copy
read -r p gen _ < <(region written "$tmp/C")
cp "$tmp/C" "$tmp/M"
region xor "$tmp/M" "$p" 1000
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "one corrupted byte in page $p (generation $gen): FAILED, exit 1" 1 \
	"^dt-guest: verify FAILED: step $sc: 1 problem: page $p: bad checksum\$" "$tmp/log"

cp "$tmp/C" "$tmp/M"
region zero "$tmp/M" "$p"
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "page $p lost (zeros): FAILED, exit 1" 1 \
	"FAILED: step $sc: 1 problem: page $p: all zeros, ledger says generation $gen \(page lost\)\$" \
	"$tmp/log"

cp "$tmp/C" "$tmp/M"
region sb "$tmp/M" 0
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "a corrupted superblock: FAILED, exit 1" 1 \
	"^dt-guest: verify FAILED: step $sc: bad superblock: magic 0x[0-9a-f]+ is not DTGUEST1\$" \
	"$tmp/log"

# ---- stale page: one page of the older copy spliced into the newer one
read -r p gnew gold < <(region written "$tmp/B" "$tmp/A")
cp "$tmp/B" "$tmp/M"
region splice "$tmp/M" "$tmp/A" "$p"
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "page $p of the older copy in the newer one: stale generation, exit 1" 1 \
	"FAILED: step [0-9]+: 1 problem: page $p: stale generation $gold \(ledger $gnew\)\$" "$tmp/log"

# ---- the older copy under the newer superblock: each page matches its
# ledger entry, but the ledger no longer adds up to the steps done
cp "$tmp/A" "$tmp/M"
region newsb "$tmp/M" "$tmp/C"
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "the older ledger and pages under the newer superblock: FAILED, exit 1" 1 \
	"FAILED: step $sc: .*ledger total [0-9]+ does not match $sc steps done" "$tmp/log"

# resumed_verifies DESC: $tmp/M, resumed for a second, then verifies
resumed_verifies() {
	guest "$tmp/log" --resume --rate 0 --duration 1 3<>"$tmp/M" &&
		guest "$tmp/log2" --resume --verify-only 3<"$tmp/M"
	cat "$tmp/log2" >>"$tmp/log"
	expect "$1" 0 "^dt-guest: verify OK: 1022 pages checked, step [0-9]+\$" "$tmp/log2"
}

# ---- the page in flight: torn is fine until the ledger says otherwise
cp "$tmp/C" "$tmp/M"
p=$(region inflight "$tmp/M" torn)
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "page $p in flight, torn (each byte old or new): OK" 0 \
	"^dt-guest: verify OK: 1022 pages checked, step $sc\$" "$tmp/log"
resumed_verifies "resumed, it rewrites the torn page: the region verifies after"
cp "$tmp/C" "$tmp/M"
p=$(region inflight "$tmp/M" counted)
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "page $p written and in the ledger, sb.step not yet: OK" 0 \
	"^dt-guest: verify OK: 1022 pages checked, step $sc\$" "$tmp/log"
resumed_verifies "resumed, it counts that step once: the ledger still sums to the step"
cp "$tmp/C" "$tmp/M"
p=$(region inflight "$tmp/M" ledger)
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "a torn in-flight page the ledger already counts: FAILED, exit 1" 1 \
	"FAILED: step $sc: 1 problem: page $p: in flight \(generation [0-9]+\): bad checksum\$" "$tmp/log"
cp "$tmp/C" "$tmp/M"
p=$(region inflight "$tmp/M" stale "$tmp/A")
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "an older, complete page $p in flight: stale, not torn: FAILED, exit 1" 1 \
	"FAILED: step $sc: 1 problem: page $p: in flight \(generation [0-9]+\): stale generation" \
	"$tmp/log"

# ---- a slow guest: pacing, pages never written, SIGUSR1, resident memory
t0=$EPOCHREALTIME
"$G" --memfd --size 64M --rate 200 --duration 60 --region-out "$tmp/rs" \
	--status-file "$tmp/status" >"$tmp/slow" 2>&1 &
pid=$!
pids+=($pid)
st=1
if wait_for "$tmp/rs"; then
	sleep 1
	snapshot $pid "$(cat "$tmp/rs")" "$tmp/D" && kill -USR1 $pid && wait_for "$tmp/status" && st=0
fi
# Reading the region checked every page; holes must not have become memory.
rss=$(awk '/^RssShmem:/ { print $2 }' "/proc/$pid/status")
[ -n "$rss" ] && [ "$rss" -lt 16384 ]
ok "verifying 64 MiB, ~200 pages written, left ${rss:-?} kB resident (< 16 MiB)" $? "$tmp/slow"
sleep 1
kill -TERM $pid
wait $pid
rc=$?
t1=$EPOCHREALTIME
[ $st = 0 ] || { echo "no snapshot or no status file" >>"$tmp/slow"; rc="$rc, no status"; }
cat "$tmp/status" >>"$tmp/slow" 2>/dev/null
grep -qE '^dt-guest: verify OK: 16367 pages checked, step [1-9][0-9]*$' "$tmp/status" 2>/dev/null &&
	grep -qxF "$(cat "$tmp/status")" "$tmp/slow" || rc="$rc, no OK verdict in both"
expect "SIGUSR1: a verdict on stdout and in --status-file, then on to SIGTERM" 0 \
	'^dt-guest: stopped at step [1-9][0-9]*$' "$tmp/slow"
# Absolute pacing never runs ahead of the rate (a batch of 1 page may be
# early; one more after a stall of 1 s, e.g. a slow copy) and catches up
# when behind: at most 200 pages per second the process lived, and at least
# half the rate over all but its first second.
steps=$(sed -n 's/^dt-guest: stopped at step //p' "$tmp/slow")
read -r lo hi secs < <(awk -v a="$t0" -v b="$t1" \
	'BEGIN { t = b - a; printf "%d %d %.2f\n", 100 * (t - 1), 200 * t + 3, t }')
[ -n "$steps" ] && [ "$steps" -ge "$lo" ] && [ "$steps" -le "$hi" ]
ok "--rate 200 for $secs s wrote ${steps:-?} pages ($lo to $hi)" $? "$tmp/slow"

q=$(region unwritten "$tmp/D")
cp "$tmp/D" "$tmp/M"
region xor "$tmp/M" "$q" 4000
guest "$tmp/log" --resume --verify-only 3<"$tmp/M"
expect "a byte in page $q, never written: nonzero page that should be zero, exit 1" 1 \
	"FAILED: step [0-9]+: 1 problem: page $q: nonzero page that should be zero \(ledger 0\)\$" \
	"$tmp/log"
# --readers and --progress-out: the counters a benchmark samples.
guest "$tmp/log" --memfd --size 1M --rate 1000 --duration 1 --readers 2 \
	--progress-out "$tmp/progress"
/usr/bin/python3 - "$tmp/progress" "$tmp/log" >>"$tmp/log" 2>&1 <<'PY'
import re, struct, sys
steps, reads = struct.unpack("<QQ", open(sys.argv[1], "rb").read(16))
done = int(re.search(r"stopped at step (\d+)", open(sys.argv[2]).read()).group(1))
print("# steps", steps, "reads", reads, "stopped at", done)
sys.exit(not (0 < steps <= done and done - steps <= 1 and reads > 0))
PY
ok "--progress-out counts the pages written and those the --readers read" $? "$tmp/log"
guest "$tmp/log" --resume --verify-only --readers 1 3<"$tmp/M"
expect "--readers with --verify-only: usage error, exit 2" 2 "readers runs with the workload" \
	"$tmp/log"
[ $fail = 0 ]
