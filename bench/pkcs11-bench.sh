#!/bin/bash
# PKCS#11: 50 modules of 1 MiB signed with a SoftHSM2 key through the daemon (the key loaded
# and the token session logged in once, one SIGN request each from one client process)
# against one `modsignctl sign-file` process per module with the same pkcs11: URI (each
# process loads the module, logs in and finds the key again). Every output is compared with
# Debian's sign-file using the same key as a file: the figures are for correct signatures.
# Usage: bench/pkcs11-bench.sh   (as root: the daemon insists on root-owned key material)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
MODSIGND=${MODSIGND:-$top/modsignd}
MODSIGNCTL=${MODSIGNCTL:-$top/modsignctl}
SIGN_FILE=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
N=${BENCH_MODULES:-50}
kver=$(find /lib/modules -mindepth 1 -maxdepth 1 -type d -printf "%f\n" | sort | head -n 1)
softhsm=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
        [ -f "$m" ] && softhsm=$m && break
done

if [ ! -x "$MODSIGND" ] || [ ! -x "$MODSIGNCTL" ]; then echo "pkcs11-bench: build first" >&2; exit 1; fi
[ -x "$SIGN_FILE" ] || { echo "pkcs11-bench: $SIGN_FILE missing (package linux-kbuild-6.1)" >&2; exit 1; }
if [ -z "$softhsm" ] || ! command -v softhsm2-util >/dev/null; then
        echo "pkcs11-bench: SoftHSM2 missing (package softhsm2)" >&2
        exit 1
fi
[ -n "$kver" ] || { echo "pkcs11-bench: no kernel under /lib/modules" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
        if [ -n "$pid" ]; then
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}
trap cleanup EXIT INT TERM

now() { date +%s%N; }
ms() { echo "scale=1; ($2 - $1) / 1000000" | bc; }

echo "building the socket client" >&2
cc -O2 -I"$top" -I"$top/src/shared" -I"$top/src/lib" -o "$work/sign-client" \
        "$top/tests/daemon/sign-client.c" "$top/src/lib/proto.c" "$top/src/lib/client.c"

echo "SoftHSM2 token with an imported RSA-2048 key" >&2
export SOFTHSM2_CONF=$work/softhsm2.conf
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" > "$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
openssl req -new -x509 -nodes -days 30 -subj "/CN=pkcs11 bench/" -newkey rsa:2048 \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 600 "$work/key.pem"
openssl pkcs8 -topk8 -nocrypt -in "$work/key.pem" -out "$work/key.p8"
softhsm2-util --import "$work/key.p8" --token bench --label signer --id 01 --pin 1234 >/dev/null
(umask 077 && echo 1234 > "$work/pin")
uri="pkcs11:token=bench;object=signer;type=private?module-path=$softhsm&pin-source=$work/pin"

printf 'static const char m[] __attribute__((section(".modinfo"), used)) = "name=bench\\0vermagic=%s SMP mod_unload ";\n' \
        "$kver" > "$work/m.c"
cc -c -o "$work/small.o" "$work/m.c"
mkdir -p "$work/mods"
for i in $(seq "$N"); do
        head -c 1048576 /dev/urandom > "$work/pad"
        objcopy --add-section .data.pad="$work/pad" --set-section-flags .data.pad=alloc,load,data \
                "$work/small.o" "$work/mods/m$i.ko"
done
for i in $(seq "$N"); do "$SIGN_FILE" sha256 "$work/key.pem" "$work/cert.pem" "$work/mods/m$i.ko" "$work/mods/ref$i.ko"; done

cat > "$work/modsignd.conf" <<CONF
[Key]
PrivateKey=pkcs11:token=bench;object=signer;type=private?module-path=$softhsm
Certificate=$work/cert.pem
PinFile=$work/pin
[Signing]
Hash=sha256
[Watch]
Path=
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
[ -S "$work/io.socket" ] || { cat "$work/daemon.log" >&2; exit 1; }
sync

echo "$N x 1 MiB: one modsignctl sign-file process per module, pkcs11: URI" >&2
t0=$(now)
for i in $(seq "$N"); do
        timeout 60 "$MODSIGNCTL" sign-file sha256 "$uri" "$work/cert.pem" "$work/mods/m$i.ko" "$work/mods/p$i.ko"
done
t1=$(now)
# Each phase starts with a clean page cache: the first phase's 50 MiB of dirty output would
# otherwise be written back during the second, and its journal commits (the audit log's
# fsync) would wait for that data.
sync
t2=$(now)
echo "$N x 1 MiB: one SIGN each through the daemon, one client" >&2
pairs=()
for i in $(seq "$N"); do pairs+=("$work/mods/m$i.ko" "$work/mods/d$i.ko"); done
timeout 120 "$work/sign-client" "$work/io.socket" sign-many sha256 "${pairs[@]}" >/dev/null
t3=$(now)
for i in $(seq "$N"); do
        cmp -s "$work/mods/ref$i.ko" "$work/mods/p$i.ko" || { echo "pkcs11-bench: m$i.ko: sign-file (pkcs11) differs from sign-file" >&2; exit 1; }
        cmp -s "$work/mods/ref$i.ko" "$work/mods/d$i.ko" || { echo "pkcs11-bench: m$i.ko: daemon output differs from sign-file" >&2; exit 1; }
done
proc_ms=$(ms "$t0" "$t1")
daemon_ms=$(ms "$t2" "$t3")
speedup=$(echo "scale=1; $proc_ms / $daemon_ms" | bc)
verdict() { if [ "$(echo "$1" | bc)" -eq 1 ]; then echo PASS; else echo MISS; fi; }

echo
echo "Machine: nproc=$(nproc), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%F)"
echo
echo "| Measure ($N x 1 MiB, SoftHSM2 RSA-2048, sha256) | Result | Target | |"
echo "|---|---:|---|---|"
echo "| one \`modsignctl sign-file\` process per module, pkcs11: URI | ${proc_ms} ms | | |"
echo "| one SIGN each through the daemon (key and session kept) | ${daemon_ms} ms | | |"
echo "| speed-up | ${speedup}x | >= 10x | $(verdict "$speedup >= 10") |"
echo
echo "Every output equals Debian's sign-file with the same key as a file, byte for byte."
