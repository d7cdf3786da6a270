#!/usr/bin/env bash
# sign-bench.sh - compare `modsignctl sign` with the kernel's sign-file and with
# the physical floor (one SHA-256 pass + one copy of the module), on the same
# synthetic modules, in one run.  See bench/README.md.
#
# Usage: bench/sign-bench.sh [--quick] [--runs N] [--strict] [--help]
# Environment: MODSIGNCTL, SIGN_FILE, GNU_TIME, BENCH_RUNS, TMPDIR.
# The markdown result goes to stdout, progress to stderr.
set -eu
export LC_ALL=C   # '.' as decimal point in EPOCHREALTIME, awk and printf

script_dir=$(cd "$(dirname "$0")" && pwd)

usage() {
    cat <<'EOF'
usage: sign-bench.sh [--quick] [--runs N] [--strict] [--help]

  --quick     one run per case (N=1) and skip the 100 MiB module
  --runs N    best-of-N wall time (default 5, or $BENCH_RUNS)
  --strict    exit 3 when a target is missed (default: exit 0 once the run completes)

Environment:
  MODSIGNCTL  modsignctl binary      (default: <script dir>/../modsignctl)
  SIGN_FILE   kernel sign-file       (default: /usr/lib/linux-kbuild-6.1/scripts/sign-file)
  GNU_TIME    GNU time, for peak RSS (default: /usr/bin/time)
  TMPDIR      where the test modules are made (the filesystem is part of what is measured)

Exit status: 0 done, 1 error or modsignctl output differs from sign-file's, 2 usage,
3 a target missed (with --strict only).
EOF
}

die() { printf 'sign-bench: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

runs=${BENCH_RUNS:-5}
quick=0
strict=0
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --runs) [ $# -ge 2 ] || { usage >&2; exit 2; }; runs=$2; shift ;;
        --runs=*) runs=${1#--runs=} ;;
        --strict) strict=1 ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'sign-bench: unknown argument: %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $runs in
    ''|*[!0-9]*|0) printf 'sign-bench: --runs needs a positive integer\n' >&2; exit 2 ;;
esac
[ "$quick" -eq 1 ] && runs=1

MODSIGNCTL=${MODSIGNCTL:-$script_dir/../modsignctl}
SIGN_FILE=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
GNU_TIME=${GNU_TIME:-/usr/bin/time}

abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }

[ -x "$MODSIGNCTL" ] || die "modsignctl not found or not executable: $MODSIGNCTL (build it, or set MODSIGNCTL)"
[ -x "$SIGN_FILE" ] || die "sign-file not found: $SIGN_FILE (package linux-kbuild-6.1, or set SIGN_FILE)"
MODSIGNCTL=$(abspath "$MODSIGNCTL")
SIGN_FILE=$(abspath "$SIGN_FILE")
for tool in gcc objcopy openssl cmp head; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
have_gnu_time=0
if [ -x "$GNU_TIME" ] && "$GNU_TIME" -f %M -o /dev/null true 2>/dev/null; then
    have_gnu_time=1
else
    say "sign-bench: GNU time not found at $GNU_TIME (apt-get install time); peak RSS skipped"
fi

load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
work=$(mktemp -d "${TMPDIR:-/tmp}/sign-bench.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- timing helpers
# now_us: wall clock in microseconds, without forking when bash has EPOCHREALTIME.
if [ -n "${EPOCHREALTIME:-}" ]; then
    now_us() { local t=$EPOCHREALTIME; REPLY=${t/./}; }
else
    now_us() { local t; t=$(date +%s%N); REPLY=$((t / 1000)); }
fi

# timed CMD...: run CMD with stdout discarded and stderr in $work/err.log;
# set ELAPSED (microseconds).  A failing command aborts the bench.
timed() {
    local t0 rc=0
    now_us; t0=$REPLY
    "$@" >/dev/null 2>"$work/err.log" || rc=$?
    now_us; ELAPSED=$((REPLY - t0))
    if [ "$rc" -ne 0 ]; then
        say "sign-bench: command failed (exit $rc): $*"
        sed 's/^/  /' "$work/err.log" >&2
        exit 1
    fi
}

# Drop nothing, warm everything: read the input into the page cache, and flush
# dirty pages from the previous run so its writeback does not land in this one.
warm() { cat "$@" >/dev/null; sync; }

min() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi; }

fmt_time() {   # microseconds -> "12.3 ms" / "1.234 s"
    awk -v u="$1" 'BEGIN { if (u >= 1000000) printf "%.3f s", u / 1e6; else printf "%.1f ms", u / 1e3 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# verdict VALUE OP LIMIT: set V to PASS or MISS (OP is le or ge) and count it.
verdict() {
    if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { exit !((op == "le") ? v <= l : v >= l) }'; then
        V=PASS
    else
        V=MISS; missed=$((missed + 1))
    fi
    checked=$((checked + 1))
}
missed=0
checked=0

# -------------------------------------------------------------------- inputs
say "sign-bench: making key, certificate and modules in $work"
openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 \
    -subj "/CN=modsignd bench key/" -keyout "$work/key.pem" -out "$work/cert.pem" \
    >/dev/null 2>"$work/err.log" || { cat "$work/err.log" >&2; die "openssl req failed"; }
KEY=$work/key.pem
CERT=$work/cert.pem

cat > "$work/mod.c" <<'EOF'
static const char modinfo_name[] __attribute__((section(".modinfo"), used)) = "name=benchmod";
static const char modinfo_vermagic[] __attribute__((section(".modinfo"), used)) =
	"vermagic=6.1.0 SMP mod_unload modversions ";
int benchmod_init(void) { return 0; }
EOF
gcc -O2 -c -o "$work/base.o" "$work/mod.c"
base_size=$(stat -c %s "$work/base.o")

# make_module OUT BYTES: an ELF relocatable of about BYTES bytes (padded with a
# random, allocated .data.big section, as a large driver's data would be).
make_module() {
    local pad=$(( $2 - base_size - 128 ))
    [ "$pad" -gt 0 ] || pad=1
    head -c "$pad" /dev/urandom > "$work/pad.bin"
    objcopy --add-section .data.big="$work/pad.bin" \
        --set-section-flags .data.big=alloc,load,data "$work/base.o" "$1"
    rm -f "$work/pad.bin"
}

MiB=1048576
sizes="1 10 100"
[ "$quick" -eq 1 ] && sizes="1 10"
for s in $sizes; do
    make_module "$work/orig-$s.ko" $((s * MiB))
done

batch_n=200
mkdir "$work/batch-orig" "$work/batch-sf" "$work/batch-ms"
batch_files=()
for i in $(seq 1 "$batch_n"); do
    make_module "$work/batch-orig/m$i.ko" $((100 * 1024))
    batch_files+=("$work/batch-ms/m$i.ko")
done

# Sanity: sign-file must accept what we made.
"$SIGN_FILE" sha256 "$KEY" "$CERT" "$work/orig-1.ko" "$work/check.ko" \
    || die "sign-file refused the synthetic module"
rm -f "$work/check.ko"

# ---------------------------------------------------------------- single modules
# The floor: what any signer must at least do - read and hash the module once,
# and write it once.
floor() { openssl dgst -sha256 "$1" >/dev/null && cp "$1" "$2"; }

declare -A t_sf t_ms t_floor
rss_sf="" rss_ms="" rss_size=""

for s in $sizes; do
    in=$work/orig-$s.ko
    out_sf=$work/out-sf-$s.ko
    out_ms=$work/ms-$s.ko
    out_floor=$work/out-floor-$s.ko
    best_sf="" best_ms="" best_floor=""
    say "sign-bench: $s MiB module, best of $runs"
    for _ in $(seq 1 "$runs"); do
        # (a) sign-file, in place (as DKMS runs it), on a fresh unsigned copy: the same
        # job as (b). Both then free the unsigned module's blocks when the signed file
        # is renamed over it, a cost that depends on the file system (discard).
        rm -f "$out_sf"; cp "$in" "$out_sf"; warm "$out_sf"
        timed "$SIGN_FILE" sha256 "$KEY" "$CERT" "$out_sf"
        best_sf=$(min "$best_sf" "$ELAPSED")

        # (b) modsignctl sign, in place, on a fresh unsigned copy
        rm -f "$out_ms"; cp "$in" "$out_ms"; warm "$out_ms"
        timed "$MODSIGNCTL" sign --key "$KEY" --cert "$CERT" --hash sha256 "$out_ms"
        best_ms=$(min "$best_ms" "$ELAPSED")

        # Correctness guard: a fast wrong signer is worthless.
        cmp -s "$out_sf" "$out_ms" || {
            cmp "$out_sf" "$out_ms" >&2 || true
            die "ABORT: modsignctl output differs from sign-file's on the $s MiB module"
        }

        # (c) floor: one SHA-256 pass over the module + one copy of it
        rm -f "$out_floor"; warm "$in"
        timed floor "$in" "$out_floor"
        best_floor=$(min "$best_floor" "$ELAPSED")
    done
    t_sf[$s]=$best_sf t_ms[$s]=$best_ms t_floor[$s]=$best_floor
    rm -f "$out_floor"
    rss_size=$s   # peak RSS is measured on the largest module of this run
done

if [ "$have_gnu_time" -eq 1 ]; then
    in=$work/orig-$rss_size.ko
    rm -f "$work/out-sf-$rss_size.ko"; cp "$in" "$work/out-sf-$rss_size.ko"; warm "$work/out-sf-$rss_size.ko"
    "$GNU_TIME" -f %M -o "$work/rss-sf" "$SIGN_FILE" sha256 "$KEY" "$CERT" "$work/out-sf-$rss_size.ko"
    rss_sf=$(tail -n 1 "$work/rss-sf")
    rm -f "$work/ms-$rss_size.ko"; cp "$in" "$work/ms-$rss_size.ko"; warm "$work/ms-$rss_size.ko"
    "$GNU_TIME" -f %M -o "$work/rss-ms" "$MODSIGNCTL" sign --key "$KEY" --cert "$CERT" \
        --hash sha256 "$work/ms-$rss_size.ko" >/dev/null
    rss_ms=$(tail -n 1 "$work/rss-ms")
    cmp -s "$work/out-sf-$rss_size.ko" "$work/ms-$rss_size.ko" \
        || die "ABORT: modsignctl output differs from sign-file's (peak RSS run)"
fi
for s in $sizes; do rm -f "$work/out-sf-$s.ko" "$work/ms-$s.ko"; done

# --------------------------------------------------------------------- batch
say "sign-bench: batch of $batch_n x 100 KiB modules, best of $runs"
sf_loop() {
    local i
    for i in $(seq 1 "$batch_n"); do
        "$SIGN_FILE" sha256 "$KEY" "$CERT" "$work/batch-sf/m$i.ko"
    done
}
best_bsf="" best_bms=""
for _ in $(seq 1 "$runs"); do
    rm -f "$work"/batch-sf/*.ko; cp "$work"/batch-orig/*.ko "$work/batch-sf/"; warm "$work"/batch-sf/*.ko
    timed sf_loop
    best_bsf=$(min "$best_bsf" "$ELAPSED")

    rm -f "$work"/batch-ms/*.ko; cp "$work"/batch-orig/*.ko "$work/batch-ms/"; warm "${batch_files[@]}"
    timed "$MODSIGNCTL" sign --key "$KEY" --cert "$CERT" --hash sha256 "${batch_files[@]}"
    best_bms=$(min "$best_bms" "$ELAPSED")

    for i in $(seq 1 "$batch_n"); do
        cmp -s "$work/batch-sf/m$i.ko" "$work/batch-ms/m$i.ko" \
            || die "ABORT: modsignctl output differs from sign-file's on batch module m$i.ko"
    done
done

# -------------------------------------------------------------------- report
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
fs=$(df -PT "$work" 2>/dev/null | awk 'NR == 2 { print $2 }' || true)
ms_version=$("$MODSIGNCTL" --version 2>/dev/null | head -n 1 || true)

echo "### modsignctl sign vs sign-file vs floor"
echo
echo "Machine: nproc=$(nproc), CPU: ${cpu:-unknown}, kernel $(uname -r), work dir on ${fs:-?}," \
    "$(openssl version | awk '{ print $1, $2 }'), RSA-2048 + SHA-256, best of $runs," \
    "load average $load_start at start, $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?') at end, $(date -u +%Y-%m-%d)."
echo "modsignctl: \`$MODSIGNCTL\` (${ms_version:-version unknown}); sign-file: \`$SIGN_FILE\`."
echo
echo "| Module | sign-file | modsignctl | floor (sha256 + cp) | modsignctl / sign-file (target ≤ 0.80x) | modsignctl / floor (target ≤ 1.30x) |"
echo "|---|---:|---:|---:|---|---|"
for s in $sizes; do
    r_sf=$(ratio "${t_ms[$s]}" "${t_sf[$s]}")
    r_fl=$(ratio "${t_ms[$s]}" "${t_floor[$s]}")
    if [ "$s" -eq 1 ]; then
        v_sf="(no target)" v_fl="(no target)"
    else
        verdict "$r_sf" le 0.8; v_sf=$V
        verdict "$r_fl" le 1.3; v_fl=$V
    fi
    printf '| %s MiB | %s | %s | %s | %sx %s | %sx %s |\n' "$s" \
        "$(fmt_time "${t_sf[$s]}")" "$(fmt_time "${t_ms[$s]}")" "$(fmt_time "${t_floor[$s]}")" \
        "$r_sf" "$v_sf" "$r_fl" "$v_fl"
done
echo
echo "| Test | sign-file | modsignctl | result | target |"
echo "|---|---:|---:|---|---|"
speedup=$(ratio "$best_bsf" "$best_bms")
verdict "$speedup" ge 5
printf '| Batch: %d modules of 100 KiB (%d sign-file processes vs 1 modsignctl call) | %s | %s | %sx faster %s | ≥ 5x faster |\n' \
    "$batch_n" "$batch_n" "$(fmt_time "$best_bsf")" "$(fmt_time "$best_bms")" "$speedup" "$V"
if [ -n "$rss_ms" ]; then
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
    note=""
    [ "$rss_size" -ne 100 ] && note=" (target is for 100 MiB; --quick)"
    verdict "$rss_ms" le 16384
    printf '| Peak RSS, %s MiB module (GNU time %%M) | %s | %s | %s%s | ≤ 16 MiB |\n' \
        "$rss_size" "$(mib "$rss_sf")" "$(mib "$rss_ms")" "$V" "$note"
else
    echo "| Peak RSS | n/a | n/a | not measured (no GNU time) | ≤ 16 MiB |"
fi
echo
echo "Correctness: modsignctl's output was byte-identical (cmp) to sign-file's for every module above."
echo
echo "Targets met: $((checked - missed)) of $checked."
if [ "$strict" -eq 1 ] && [ "$missed" -gt 0 ]; then
    exit 3
fi
