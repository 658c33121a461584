# SPDX-License-Identifier: GPL-2.0
# Sourced by the host test scripts: TAP result lines.
n=0 fail=0
# tap_result DESC STATUS [LOG [LINES]]: one TAP line; on failure the last
# LINES (default 15) of LOG as diagnostics.
tap_result() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		fail=$((fail + 1))
		[ -n "${3:-}" ] && [ -f "$3" ] && tail -n "${4:-15}" "$3" | sed 's/^/# /'
	fi
}
