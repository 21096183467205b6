#!/usr/bin/env bash
# Drives OpenSC's pkcs11-tool against the edgekit token, as any PKCS#11 application would.
# Usage: pkcs11_tool_test.sh <case> <pkcs11-tool> <module.so> <c++ compiler>
#   cases: slots, mechanisms, keygen_sign_verify, test
# Each case works in its own temporary token folder and removes it afterwards.
set -euo pipefail
case_name=$1 tool=$2 module=$3 cxx=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EDGEKIT_TOKEN_DIR="$work/token"
export EDGEKIT_TOKEN_PBKDF2_ITERATIONS=2000  # fast logins; the default is 100000

# A module built with sanitizers needs their runtimes loaded first in an uninstrumented program.
preload=()
if readelf -d "$module" | grep -q 'libasan'; then
  preload=(env "LD_PRELOAD=$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libubsan.so)"
           ASAN_OPTIONS=detect_leaks=0)  # pkcs11-tool's own leaks are not ours to report
fi

p11() { "${preload[@]}" "$tool" --module "$module" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect <pattern> <output>
  grep -qE -- "$1" <<<"$2" || { echo "$2" >&2; fail "expected /$1/"; }
}

SO=87654321 PIN=1234
init() {
  p11 --init-token --label edgekit-test --so-pin $SO >/dev/null
  p11 --login --login-type so --so-pin $SO --init-pin --pin $PIN >/dev/null
}

case "$case_name" in
  slots)
    out=$(p11 --list-slots)
    expect 'token state: +uninitialized' "$out"
    init
    out=$(p11 --list-slots)
    expect 'token label +: edgekit-test' "$out"
    expect 'token flags +: login required, rng, token initialized, PIN initialized' "$out"
    out=$(p11 --show-info)
    expect 'Cryptoki version 2\.40' "$out"
    expect 'Manufacturer +edgekit' "$out"
    ;;
  mechanisms)
    init
    out=$(p11 --list-mechanisms)
    for m in ECDSA-KEY-PAIR-GEN 'ECDSA,' ECDSA-SHA256 RSA-PKCS-KEY-PAIR-GEN 'RSA-PKCS,' \
             SHA256-RSA-PKCS, RSA-PKCS-PSS SHA256-RSA-PKCS-PSS 'SHA256, digest' SHA256-HMAC; do
      expect "$m" "$out"
    done
    [ "$(grep -c '^  ' <<<"$out")" -eq 10 ] || fail "expected 10 mechanisms: $out"
    ;;
  keygen_sign_verify)
    init
    printf 'edgekit signs this' >"$work/data"
    openssl dgst -sha256 -binary "$work/data" >"$work/hash"
    for spec in EC:prime256v1:01 EC:secp384r1:02 rsa:2048:03; do
      type=${spec%:*} id=${spec##*:}
      out=$(p11 --login --pin $PIN --keypairgen --key-type "$type" --id "$id" --label "k$id")
      expect 'never extractable' "$out"
    done
    sign_verify() {  # id mechanism input [extra...]
      local id=$1 mech=$2 in=$3
      shift 3
      p11 --login --pin $PIN --sign --id "$id" -m "$mech" -i "$in" -o "$work/sig" "$@" >/dev/null
      out=$(p11 --verify --id "$id" -m "$mech" -i "$in" --signature-file "$work/sig" "$@" 2>&1)
      expect 'Signature is valid' "$out"
      # A flipped signature byte must not verify.
      printf '\x55' | dd of="$work/sig" bs=1 seek=10 conv=notrunc status=none
      # (pkcs11-tool exits 0 either way; its words tell.)
      out=$(p11 --verify --id "$id" -m "$mech" -i "$in" --signature-file "$work/sig" "$@" 2>&1 || true)
      expect 'Invalid signature|CKR_SIGNATURE_INVALID' "$out"
      if grep -q 'Signature is valid' <<<"$out"; then fail "$mech: a corrupted signature verified"; fi
    }
    sign_verify 01 ECDSA "$work/hash"
    sign_verify 01 ECDSA-SHA256 "$work/data"
    sign_verify 02 ECDSA "$work/hash"
    sign_verify 03 SHA256-RSA-PKCS "$work/data"
    sign_verify 03 SHA256-RSA-PKCS-PSS "$work/data" --mgf MGF1-SHA256
    sign_verify 03 RSA-PKCS-PSS "$work/hash" --hash-algorithm SHA256 --mgf MGF1-SHA256
    # OpenSSL, not the token, checks signatures made inside the token. pkcs11-tool 0.23's
    # --read-object frees an EC key's parameters before it uses them (its own use-after-free,
    # which ASan stops), so the P-256 SubjectPublicKeyInfo is built here from CKA_EC_POINT.
    point=$(p11 --list-objects --type pubkey --id 01 | sed -n 's/^ *EC_POINT: *0441//p')
    [ ${#point} -eq 130 ] || fail "no P-256 EC_POINT listed"
    spki="3059301306072a8648ce3d020106082a8648ce3d030107034200$point"
    printf "$(sed 's/../\\x&/g' <<<"$spki")" >"$work/pub01.der"
    p11 --read-object --type pubkey --id 03 -o "$work/pub03.der" >/dev/null
    p11 --login --pin $PIN --sign --id 01 -m ECDSA-SHA256 --signature-format openssl \
      -i "$work/data" -o "$work/sig.der" >/dev/null
    openssl dgst -sha256 -verify "$work/pub01.der" -keyform DER -signature "$work/sig.der" \
      "$work/data" | grep -q 'Verified OK' || fail "OpenSSL rejects the token's ECDSA signature"
    p11 --login --pin $PIN --sign --id 03 -m SHA256-RSA-PKCS -i "$work/data" -o "$work/sig.rsa" >/dev/null
    openssl dgst -sha256 -verify "$work/pub03.der" -keyform DER -signature "$work/sig.rsa" \
      "$work/data" | grep -q 'Verified OK' || fail "OpenSSL rejects the token's RSA signature"
    ;;
  test)
    init
    p11 --login --pin $PIN --keypairgen --key-type rsa:2048 --id 10 --label rsa >/dev/null
    p11 --login --pin $PIN --keypairgen --key-type EC:prime256v1 --id 11 --label ec >/dev/null
    # --allow-sw: without it pkcs11-tool skips signature tests for mechanisms without CKF_HW,
    # which a software token rightly does not claim.
    for extra in "" --allow-sw; do
      out=$(p11 --login --pin $PIN --test $extra 2>&1) || { echo "$out" >&2; fail "--test $extra"; }
      expect '^No errors' "$out"
    done
    expect 'SHA256-RSA-PKCS: OK' "$out"
    expect 'all 4 signature functions seem to work' "$out"
    out=$(p11 --login --pin $PIN --use-locking --test-threads IN --test-threads ILGISLT0 --test-threads ILGISLT0 2>&1) \
      || { echo "$out" >&2; fail "--test-threads"; }
    ;;
  *)
    fail "unknown case $case_name"
    ;;
esac
echo "pkcs11-tool $case_name: ok"
