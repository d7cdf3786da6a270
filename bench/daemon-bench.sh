#!/bin/bash
# The daemon's figures, in one run: latency of the safety net (a module's close() in a watched
# tree to the rename of its signed replacement, 1 MiB modules in a burst of 100), idle wakeups
# and memory, and 200 modules of 100 KiB signed through the socket (one SIGN each, the way
# the DKMS hook asks) against a loop of Debian's sign-file.
# Usage: bench/daemon-bench.sh   (as root; builds its helpers with cc)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
MODSIGND=${MODSIGND:-$top/modsignd}
SIGN_FILE=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
kver=$(find /lib/modules -mindepth 1 -maxdepth 1 -type d -printf "%f\n" | sort | head -n 1)

[ -x "$MODSIGND" ] || { echo "daemon-bench: build first ($MODSIGND missing)" >&2; exit 1; }
[ -x "$SIGN_FILE" ] || { echo "daemon-bench: $SIGN_FILE missing (package linux-kbuild-6.1)" >&2; exit 1; }
[ -n "$kver" ] || { echo "daemon-bench: no kernel under /lib/modules" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
        rm -rf "$work"
}
trap cleanup EXIT INT TERM

now() { date +%s%N; }
ms() { echo "scale=1; ($2 - $1) / 1000000" | bc; }

echo "building helpers" >&2
cc -O2 -o "$work/latency" "$here/latency.c"
cc -O2 -I"$top" -I"$top/src/shared" -I"$top/src/lib" -o "$work/sign-client" \
        "$top/tests/daemon/sign-client.c" "$top/src/lib/proto.c" "$top/src/lib/client.c"

openssl req -new -x509 -nodes -days 30 -subj "/CN=daemon bench/" -newkey rsa:2048 \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 600 "$work/key.pem"

# A synthetic module: an ELF relocatable with the .modinfo the daemon reads, padded.
printf 'static const char m[] __attribute__((section(".modinfo"), used)) = "name=bench\\0vermagic=%s SMP mod_unload ";\n' \
        "$kver" > "$work/m.c"
cc -c -o "$work/small.o" "$work/m.c"
head -c 1048576 /dev/urandom > "$work/pad1m"
objcopy --add-section .data.pad="$work/pad1m" --set-section-flags .data.pad=alloc,load,data "$work/small.o" "$work/m1m.ko"
head -c 102400 /dev/urandom > "$work/pad100k"
objcopy --add-section .data.pad="$work/pad100k" --set-section-flags .data.pad=alloc,load,data "$work/small.o" "$work/m100k.ko"

tree="$work/root/lib/modules/$kver/updates/dkms"
mkdir -p "$tree"
cat > "$work/modsignd.conf" <<CONF
[Key]
PrivateKey=$work/key.pem
Certificate=$work/cert.pem
[Signing]
Hash=sha256
[Watch]
Path=
Path=$work/root/lib/modules
[Policy]
# The scratch modules are not DKMS builds: the benchmark measures signing, not the gate.
Mode=allowlist
Allow=*
RateLimit=off
[Daemon]
Socket=$work/io.socket
StateDirectory=$work/state
CONF
"$MODSIGND" --config "$work/modsignd.conf" 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$work/io.socket" ] && break; sleep 0.05; done
[ -S "$work/io.socket" ] || { cat "$work/daemon.log"; exit 1; }
sync

echo "latency: 100 modules of 1 MiB written back to back into a watched tree" >&2
read -r median p99 max < <("$work/latency" "$tree" "$work/m1m.ko" 100)

echo "idle: 10 s with nothing to do" >&2
sleep 2
switches() {
        local total=0 t v n
        for t in /proc/"$pid"/task/*/status; do
                v=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t")
                n=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t")
                total=$((total + v + n))
        done
        echo "$total"
}
s0=$(switches)
sleep 10
s1=$(switches)
wakeups=$((s1 - s0))
rss_kb=$(awk '/^VmRSS/ { print $2 }' /proc/"$pid"/status)

echo "batch: 200 modules of 100 KiB, sign-file loop against one SIGN each" >&2
mkdir -p "$work/batch"
for i in $(seq 200); do cp "$work/m100k.ko" "$work/batch/m$i.ko"; done
sync
t0=$(now)
for i in $(seq 200); do "$SIGN_FILE" sha256 "$work/key.pem" "$work/cert.pem" "$work/batch/m$i.ko" "$work/batch/s$i.ko"; done
t1=$(now)
pairs=()
for i in $(seq 200); do pairs+=("$work/batch/m$i.ko" "$work/batch/d$i.ko"); done
"$work/sign-client" "$work/io.socket" sign-many sha256 "${pairs[@]}" >/dev/null
t2=$(now)
for i in $(seq 200); do "$work/sign-client" "$work/io.socket" sign "$work/batch/m$i.ko" "$work/batch/e$i.ko" sha256 >/dev/null; done
t3=$(now)
for i in $(seq 200); do
        cmp -s "$work/batch/s$i.ko" "$work/batch/d$i.ko" || { echo "daemon-bench: m$i.ko: daemon output differs from sign-file's" >&2; exit 1; }
done
loop_ms=$(ms "$t0" "$t1")
daemon_ms=$(ms "$t1" "$t2")
daemon_proc_ms=$(ms "$t2" "$t3")
speedup=$(echo "scale=1; $loop_ms / $daemon_ms" | bc)

verdict() { if [ "$(echo "$1" | bc)" -eq 1 ]; then echo PASS; else echo MISS; fi; }
echo
echo "Machine: nproc=$(nproc), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%F)"
echo
echo "| Measure | Result | Target | |"
echo "|---|---:|---|---|"
echo "| close to signed rename, 1 MiB x 100 burst: median | ${median} ms | <= 20 ms | $(verdict "$median <= 20") |"
echo "| same, p99 | ${p99} ms | <= 100 ms | $(verdict "$p99 <= 100") |"
echo "| same, max | ${max} ms | | |"
echo "| idle wakeups over 10 s (no watchdog) | $wakeups | 0 | $(verdict "$wakeups == 0") |"
echo "| idle RSS | $((rss_kb / 1024)).$(( (rss_kb % 1024) * 10 / 1024 )) MiB | <= 8 MiB | $(verdict "$rss_kb <= 8192") |"
echo "| 200 x 100 KiB: sign-file loop | ${loop_ms} ms | | |"
echo "| 200 x 100 KiB: one SIGN each through the socket, one client | ${daemon_ms} ms | | |"
echo "| 200 x 100 KiB: one SIGN each, one client process per module | ${daemon_proc_ms} ms | | |"
echo "| speed-up | ${speedup}x | >= 5x | $(verdict "$speedup >= 5") |"
echo
echo "Every daemon signature in the batch equals sign-file's, byte for byte."
