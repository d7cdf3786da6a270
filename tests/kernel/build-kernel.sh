#!/bin/bash
# build-kernel.sh CACHE_DIR
#
# Builds (once) the test kernel for the kernel acceptance test:
#   - test signing keys and certificates in CACHE_DIR/keys/
#     (rsa2048, rsa4096, ec256, ec384; certs.pem = all of them, trusted)
#   - linux-source-6.1 unpacked in CACHE_DIR/src, configured from tinyconfig
#     with CONFIG_MODULE_SIG_FORCE and the certs.pem as SYSTEM_TRUSTED_KEYS
#   - CACHE_DIR/bzImage; CACHE_DIR/src stays ready for
#     `make -C CACHE_DIR/src M=DIR modules`.
# Idempotent: if CACHE_DIR/bzImage and a matching stamp exist, it does nothing.
# The whole build log goes to CACHE_DIR/build.log.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 CACHE_DIR" >&2
	exit 2
fi

LINUX_SOURCE=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
LOG=$CACHE/build.log
# Not the make variables of an outer `make check`.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
STAMP=$CACHE/stamp
KEYS=$CACHE/keys
SRC=$CACHE/src

# The stamp records what the cache was built from: this script and the
# kernel source tarball. A change of either rebuilds everything.
stamp_text() {
	echo "build-kernel.sh $(sha256sum <"$0" | cut -d' ' -f1)"
	# shellcheck disable=SC2012
	echo "linux-source $(ls -l --time-style=+%s "$LINUX_SOURCE" | awk '{print $5, $6}')"
}

if [ -f "$CACHE/bzImage" ] && [ -f "$STAMP" ] &&
	[ "$(cat "$STAMP")" = "$(stamp_text)" ]; then
	echo "build-kernel: cached kernel in $CACHE"
	exit 0
fi

if [ ! -f "$LINUX_SOURCE" ]; then
	echo "build-kernel: $LINUX_SOURCE missing (apt-get install linux-source-6.1)" >&2
	exit 1
fi

start=$(date +%s)
rm -f "$STAMP" "$CACHE/bzImage"
: >"$LOG"

fail() {
	echo "build-kernel: FAILED: $*" >&2
	echo "build-kernel: last lines of $LOG:" >&2
	tail -n 30 "$LOG" >&2 || true
	exit 1
}

# ---------------------------------------------------------------- keys
echo "build-kernel: generating test keys in $KEYS"
rm -rf "$KEYS"
mkdir -p "$KEYS"

# gen_key NAME CN DIGEST NEWKEY-ARGS...
gen_key() {
	name=$1 cn=$2 digest=$3
	shift 3
	cat >"$KEYS/$name.cnf" <<EOF
[ req ]
distinguished_name = dn
prompt = no
string_mask = utf8only
x509_extensions = ext

[ dn ]
O = modsignd test suite
CN = $cn

[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl req -new -x509 -nodes -utf8 -days 36500 "-$digest" \
		-config "$KEYS/$name.cnf" "$@" \
		-keyout "$KEYS/$name.key" -out "$KEYS/$name.crt" >>"$LOG" 2>&1 ||
		fail "openssl req for $name"
	chmod 600 "$KEYS/$name.key"
}

gen_key rsa2048 "modsignd test RSA-2048" sha256 -newkey rsa:2048
gen_key rsa4096 "modsignd test RSA-4096" sha256 -newkey rsa:4096
gen_key ec256 "modsignd test EC P-256" sha256 \
	-newkey ec -pkeyopt ec_paramgen_curve:P-256
gen_key ec384 "modsignd test EC P-384" sha384 \
	-newkey ec -pkeyopt ec_paramgen_curve:P-384
cat "$KEYS/rsa2048.crt" "$KEYS/rsa4096.crt" "$KEYS/ec256.crt" \
	"$KEYS/ec384.crt" >"$KEYS/certs.pem"

# ---------------------------------------------------------------- source
echo "build-kernel: unpacking $LINUX_SOURCE into $SRC"
rm -rf "$SRC"
mkdir -p "$SRC"
tar -xJf "$LINUX_SOURCE" -C "$SRC" --strip-components=1 >>"$LOG" 2>&1 ||
	fail "untar"

# ---------------------------------------------------------------- config
echo "build-kernel: configuring (tinyconfig + module signing)"
# Options that must end up =y after olddefconfig.
WANT_Y="64BIT MODULES MODULE_UNLOAD MODULE_SIG MODULE_SIG_FORCE
MODULE_SIG_SHA256 MODULE_DECOMPRESS MODULE_COMPRESS_XZ
SYSTEM_TRUSTED_KEYRING SECONDARY_TRUSTED_KEYRING SYSTEM_DATA_VERIFICATION
KEYS ASYMMETRIC_KEY_TYPE ASYMMETRIC_PUBLIC_KEY_SUBTYPE
X509_CERTIFICATE_PARSER PKCS7_MESSAGE_PARSER
CRYPTO_RSA CRYPTO_ECDSA CRYPTO_SHA256 CRYPTO_SHA512 XZ_DEC
PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE BLK_DEV_INITRD RD_GZIP
BINFMT_ELF BINFMT_SCRIPT DEVTMPFS DEVTMPFS_MOUNT PROC_FS SYSFS KERNEL_GZIP"
# Options that must end up unset (the last ones only to build less: the
# console is the serial port, the initramfs is gzip).
WANT_N="MODULE_COMPRESS_NONE MODULE_SIG_ALL
VT INPUT SERIO HID KERNEL_XZ
RD_BZIP2 RD_LZMA RD_XZ RD_LZO RD_LZ4 RD_ZSTD"

(
	cd "$SRC"
	# ARCH=x86_64 makes tinyconfig 64-bit from the start (with the default
	# ARCH=x86 it is 32-bit, and switching 64BIT on afterwards lets
	# olddefconfig turn on many 64-bit-only defaults).
	make ARCH=x86_64 tinyconfig
	args=
	for o in $WANT_Y; do args="$args -e $o"; done
	for o in $WANT_N; do args="$args -d $o"; done
	# shellcheck disable=SC2086
	scripts/config --file .config $args \
		--set-str SYSTEM_TRUSTED_KEYS "$KEYS/certs.pem"
	make olddefconfig
) >>"$LOG" 2>&1 || fail "configuration"

missing=
for o in $WANT_Y; do
	grep -qx "CONFIG_$o=y" "$SRC/.config" || missing="$missing $o"
done
for o in $WANT_N; do
	grep -q "^CONFIG_$o=" "$SRC/.config" && missing="$missing !$o"
done
grep -qxF "CONFIG_SYSTEM_TRUSTED_KEYS=\"$KEYS/certs.pem\"" "$SRC/.config" ||
	missing="$missing SYSTEM_TRUSTED_KEYS"
grep -qx 'CONFIG_MODULE_SIG_HASH="sha256"' "$SRC/.config" ||
	missing="$missing MODULE_SIG_HASH"
if [ -n "$missing" ]; then
	echo "build-kernel: these options did not end up as requested:$missing" >&2
	fail "configuration check"
fi

# ---------------------------------------------------------------- build
jobs=$(nproc)
echo "build-kernel: make -j$jobs bzImage modules_prepare (log: $LOG)"
(
	cd "$SRC"
	make -j"$jobs" bzImage modules_prepare
	# No module is configured: this only writes Module.symvers, so that
	# out-of-tree modules (make M=DIR modules) resolve the kernel's symbols.
	make -j"$jobs" modules
) >>"$LOG" 2>&1 || fail "kernel build"
[ -f "$SRC/Module.symvers" ] || fail "no Module.symvers"

cp "$SRC/arch/x86/boot/bzImage" "$CACHE/bzImage"
stamp_text >"$STAMP"
end=$(date +%s)
echo "build-kernel: done in $((end - start)) s: $CACHE/bzImage"
