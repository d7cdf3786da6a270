#!/bin/bash
# run-rotate-kernel-test.sh: after `modsignctl rotate`, does a real kernel load the
# re-signed modules?
#
# The test kernel (build-kernel.sh, cached in KERNEL_CACHE) trusts the four test keys it
# builds in (CACHE/keys/{rsa2048,rsa4096,ec256,ec384}). This test rotates from one built-in
# key to another, rsa2048 -> rsa4096, over a scratch machine: ROOT/lib/modules/KVER with
# mst_hello copies in updates/ (plain and .ko.xz) and extra/, a DKMS-like tree, all signed by
# rsa2048, and one module signed by a key the kernel does not trust (which rotate must leave
# alone). `rotate --force` (the guest kernel, not this host's, is the one to trust the new
# key) re-signs; then the guest loads every module:
#   re-signed modules           OK, and modinfo names rsa4096 as their signer
#   the untrusted key's module  ERR EKEYREJECTED, byte-identical to before
#
# Environment: MODSIGNCTL, KERNEL_CACHE, srcdir, QEMU, BUSYBOX, LINUX_SOURCE, QEMU_TIMEOUT
# as for run-kernel-test.sh.
# Exit: 0 pass, 1 fail, 77 skip (qemu or linux-source-6.1 missing).
set -eu

me=rotate-kernel-test
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
kt_find_tdir finit.c module/mst_hello.c

kt_require gcc make cpio gzip openssl timeout xz modinfo cmp

kt_workdir rotate-kernel

kt_kernel rsa2048 rsa4096

echo "$me: building mst_hello and finit"
mkdir -p "$work/module"
cp "$tdir/module/mst_hello.c" "$work/module/"
echo 'obj-m := mst_hello.o' >"$work/module/Kbuild"
kt_kbuild "$work/module"
kver=$(modinfo -F vermagic "$work/module/mst_hello.ko" | cut -d' ' -f1)

# The scratch machine; key files copied (rotate retires the old one by renaming it).
m=$work/machine
lm=$m/lib/modules/$kver
mkdir -p "$lm/updates/dkms" "$lm/extra" "$m/var/lib/dkms/mst/1.0/$kver/x86_64/module" "$m/etc/modsignd" "$m/state"
install -m 0600 "$K/rsa2048.key" "$m/etc/modsignd/old.key"
install -m 0644 "$K/rsa2048.crt" "$m/etc/modsignd/old.crt"
install -m 0600 "$K/rsa4096.key" "$m/etc/modsignd/new.key"
install -m 0644 "$K/rsa4096.crt" "$m/etc/modsignd/new.crt"
printf '[Key]\nPrivateKey=%s\nCertificate=%s\n[Daemon]\nSocket=%s\nStateDirectory=%s\n' \
	"$m/etc/modsignd/old.key" "$m/etc/modsignd/old.crt" "$m/none.socket" "$m/state" >"$m/etc/modsignd/modsignd.conf"
openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=modsignd untrusted rotate test" \
	-addext "subjectKeyIdentifier=hash" -keyout "$work/untrusted.key" -out "$work/untrusted.crt" 2>/dev/null ||
	die "openssl req (untrusted key)"
chmod 0600 "$work/untrusted.key"

old_mods=("$lm/updates/dkms/r-sha256.ko" "$lm/extra/r-sha512.ko" "$lm/updates/r-keyid.ko"
	"$m/var/lib/dkms/mst/1.0/$kver/x86_64/module/r-dkms.ko")
for f in "${old_mods[@]}" "$lm/updates/untrusted.ko"; do
	cp "$work/module/mst_hello.ko" "$f"
done
xz --check=crc32 --lzma2=dict=1MiB -c "$work/module/mst_hello.ko" >"$lm/updates/r-xz.ko.xz"
old_mods+=("$lm/updates/r-xz.ko.xz")
ms() { "$MODSIGNCTL" -q "$@"; }
ms sign --key "$K/rsa2048.key" --cert "$K/rsa2048.crt" --hash sha256 \
	"$lm/updates/dkms/r-sha256.ko" "$lm/updates/r-xz.ko.xz" "$m/var/lib/dkms/mst/1.0/$kver/x86_64/module/r-dkms.ko" ||
	die "modsignctl sign (rsa2048)"
ms sign --key "$K/rsa2048.key" --cert "$K/rsa2048.crt" --hash sha512 "$lm/extra/r-sha512.ko" || die "sign sha512"
ms sign --key "$K/rsa2048.key" --cert "$K/rsa2048.crt" --hash sha256 --keyid "$lm/updates/r-keyid.ko" ||
	die "sign --keyid"
ms sign --key "$work/untrusted.key" --cert "$work/untrusted.crt" --hash sha256 "$lm/updates/untrusted.ko" ||
	die "sign (untrusted)"
cp "$lm/updates/untrusted.ko" "$work/untrusted.before"

echo "$me: modsignctl rotate --force: rsa2048 -> rsa4096"
"$MODSIGNCTL" --config "$m/etc/modsignd/modsignd.conf" rotate --force --modules-dir "$m/lib/modules" \
	--dkms-tree "$m/var/lib/dkms" --new-key "$m/etc/modsignd/new.key" --new-cert "$m/etc/modsignd/new.crt" \
	>"$work/rotate.out" 2>&1 || die "rotate failed: $(cat "$work/rotate.out")"
cat "$work/rotate.out"
for f in "${old_mods[@]}"; do
	"$MODSIGNCTL" -q verify --cert "$K/rsa4096.crt" "$f" || die "$f does not verify with rsa4096 after rotate"
done
cmp -s "$work/untrusted.before" "$lm/updates/untrusted.ko" || die "rotate touched the untrusted key's module"
[ -f "$m/etc/modsignd/old.key.retired" ] || die "the old key was not retired"
echo "$me: ok: ${#old_mods[@]} modules re-signed with rsa4096 on the host side; the other key's module untouched"

kt_root
loads=
for f in "${old_mods[@]}" "$lm/updates/untrusted.ko"; do
	cp "$f" "$root/v/"
	case $f in
	*.xz) loads="$loads/finit /v/$(basename "$f") compressed"$'\n' ;;
	*) loads="$loads/finit /v/$(basename "$f")"$'\n' ;;
	esac
done
{
	kt_guest_prologue
	# shellcheck disable=SC2016 # $(uname -r) runs in the guest
	printf 'echo "MST-BEGIN $(uname -r)"\n'
	printf '%s' "$loads"
	printf 'echo MST-END\nreboot -f\n'
} >"$root/init"
kt_boot
kt_guest_output

for f in "${old_mods[@]}"; do
	expect "RESULT $(basename "$f") OK"
done
expect 'RESULT untrusted.ko ERR EKEYREJECTED'
[ "$fails" -eq 0 ] || die "$fails expectation(s) not met"
echo "$me: PASS: the kernel loads every module rotate re-signed with the new built-in key"
