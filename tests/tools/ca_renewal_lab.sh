#!/bin/sh
# Reproduce the CA renewal findings of docs/ca-renewal.md with openssl (and faketime when present).
#
# Builds, in a temporary directory, an "old" CA valid 30 days, three renewals of it (same key and
# subject: new serial with easy-rsa's full AKI, new serial with keyid-only AKI, same serial), leaves
# with easy-rsa's AKI (keyid + issuer name + issuer serial) and with keyid-only AKI, and CRLs; then
# checks each finding with `openssl verify` at "day 1" (overlap) and "day 40" (after the old CA's
# notAfter) using -attime. Prints one line per case and exits 0 when every finding holds.
#
# Usage: sh tests/tools/ca_renewal_lab.sh [-k]     (-k keeps the temporary directory)
set -u

OPENSSL=${OPENSSL:-openssl}
KEEP=
[ "${1:-}" = "-k" ] && KEEP=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ca_renewal_lab.XXXXXX") || exit 2
cleanup() { [ -n "$KEEP" ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 2' INT TERM
cd "$WORK" || exit 2

FAILED=0
NOW=$(date +%s)
DAY1=$((NOW + 86400))
DAY40=$((NOW + 40 * 86400))

cat > lab.cnf <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = VPN CA
# easy-rsa 3.2.6 x509-types/ca
[ ca_full ]
basicConstraints = critical,CA:TRUE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer:always
keyUsage = cRLSign, keyCertSign
[ ca_keyid ]
basicConstraints = critical,CA:TRUE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
keyUsage = cRLSign, keyCertSign
# easy-rsa x509-types/client and server
[ client_full ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer:always
extendedKeyUsage = clientAuth
keyUsage = digitalSignature
[ client_keyid ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
extendedKeyUsage = clientAuth
keyUsage = digitalSignature
[ server_keyid ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
extendedKeyUsage = serverAuth
keyUsage = digitalSignature,keyEncipherment
subjectAltName = DNS:server
[ ca ]
default_ca = lab_ca
[ lab_ca ]
database = ./index.txt
crlnumber = ./crlnumber
default_md = sha256
default_crl_days = 3650
[ crl_full ]
authorityKeyIdentifier = keyid:always,issuer:always
[ crl_keyid ]
authorityKeyIdentifier = keyid:always
EOF

die() { echo "setup failed: $*" >&2; exit 2; }

# -- the PKI ----------------------------------------------------------------------------------------
"$OPENSSL" genrsa -out ca.key 2048 2>/dev/null || die "CA key"
"$OPENSSL" genrsa -out leaf.key 2048 2>/dev/null || die "leaf key"
ca() { # name extensions days serial
    "$OPENSSL" req -x509 -new -key ca.key -config lab.cnf -extensions "$2" -days "$3" -set_serial "$4" -out "$1.crt" \
        || die "CA $1"
}
ca old ca_full 30 0x1111              # the CA in service: 30 days left
ca new_easyrsa ca_full 3650 0x2222    # easyrsa renew-ca: same key and subject, new serial, full AKI
ca new_keyid ca_keyid 3650 0x2222     # recommended: same key and subject, new serial, keyid-only AKI
ca new_sameserial ca_full 3650 0x1111 # same serial as the old one (violates RFC 5280 4.1.2.2)

"$OPENSSL" req -new -key leaf.key -subj /CN=leaf -out leaf.csr 2>/dev/null || die "request"
SERIAL=4096
leaf() { # name issuer-cert extensions
    SERIAL=$((SERIAL + 1))
    "$OPENSSL" x509 -req -in leaf.csr -CA "$2.crt" -CAkey ca.key -set_serial "$SERIAL" -days 825 \
        -extfile lab.cnf -extensions "$3" -out "$1.crt" 2>/dev/null || die "leaf $1"
}
leaf old_full old client_full                    # issued before the renewal, as easy-rsa does
leaf old_keyid old client_keyid                  # issued before the renewal, keyid-only AKI
leaf easyrsa_full new_easyrsa client_full        # issued after easyrsa renew-ca (AKI serial 2222)
leaf keyid_full new_keyid client_full            # full AKI after the recommended renewal
leaf keyid_keyid new_keyid client_keyid          # recommended leaf after the recommended renewal
leaf server_keyid new_keyid server_keyid         # recommended server certificate
leaf old_full_revoked old client_full
leaf old_keyid_revoked old client_keyid
leaf samesn_full new_sameserial client_full

cat new_easyrsa.crt old.crt > easyrsa_new+old.pem
cat new_keyid.crt old.crt > keyid_new+old.pem

: > index.txt
echo 01 > crlnumber
"$OPENSSL" ca -config lab.cnf -revoke old_full_revoked.crt -keyfile ca.key -cert old.crt 2>/dev/null || die "revoke"
"$OPENSSL" ca -config lab.cnf -revoke old_keyid_revoked.crt -keyfile ca.key -cert old.crt 2>/dev/null || die "revoke"
crl() { # name signing-cert crl-extensions
    "$OPENSSL" ca -config lab.cnf -gencrl -keyfile ca.key -cert "$2.crt" -crlexts "$3" -out "$1.pem" 2>/dev/null || die "CRL $1"
}
crl crl_old_full old crl_full          # easyrsa gen-crl before the renewal
crl crl_new_full new_keyid crl_full    # easyrsa gen-crl after a renewal (AKI serial 2222)
crl crl_new_keyid new_keyid crl_keyid  # recommended (what plugins/module_utils/crl_manager.py writes)

# -- the checks -------------------------------------------------------------------------------------
# verify_result TRUST CERT ATTIME [CRL] -> "OK" or "error N at D depth lookup: ..."
verify_result() {
    out=$("$OPENSSL" verify -attime "$3" ${4:+-crl_check -CRLfile "$4"} -CAfile "$1" "$2" 2>&1)
    case "$out" in
        *": OK") echo OK ;;
        *) printf '%s\n' "$out" | grep '^error [0-9]* at' | head -n 1 ;;
    esac
}
# expect DESCRIPTION EXPECTED OBSERVED; EXPECTED is OK or an error number
expect() {
    case "$2:$3" in
        OK:OK | [0-9]*:"error $2 at "*) echo "case $1 : OK (observed: ${3})" ;;
        *) echo "case $1 : FAIL (expected ${2}, observed: ${3})"; FAILED=$((FAILED + 1)) ;;
    esac
}
check() { # description expected trust cert attime [crl]
    expect "$1" "$2" "$(verify_result "$3.pem" "$4.crt" "$5" ${6:+"$6.pem"})"
}
for name in old new_easyrsa new_keyid new_sameserial; do cp "$name.crt" "$name.pem"; done

echo "# (a) easy-rsa renew-ca (new serial): ca.crt = new only"
check "a1 old easy-rsa leaf, trust new (easyrsa renew-ca), day 1" 20 new_easyrsa old_full "$DAY1"
check "a2 old easy-rsa leaf, trust new+old, day 1" OK easyrsa_new+old old_full "$DAY1"
check "a3 old easy-rsa leaf, trust new+old, day 40 (old CA expired)" 10 easyrsa_new+old old_full "$DAY40"
check "a4 leaf issued after renew-ca (AKI serial 2222), old profile <ca>=old, day 1" 20 old easyrsa_full "$DAY1"
echo "# (b) same serial as the old CA certificate"
check "b1 old easy-rsa leaf, trust new(same serial), day 40" OK new_sameserial old_full "$DAY40"
check "b2 new full-AKI leaf, old profile <ca>=old, day 1" OK old samesn_full "$DAY1"
echo "# (c) keyid-only AKI"
check "c1 old keyid-only leaf, trust new, day 1" OK new_keyid old_keyid "$DAY1"
check "c2 old keyid-only leaf, trust new, day 40" OK new_keyid old_keyid "$DAY40"
check "c3 new keyid-only leaf, old profile <ca>=old, day 1" OK old keyid_keyid "$DAY1"
check "c4 new keyid-only server cert, old profile <ca>=old, day 40 (anchor expiry is checked)" 10 old server_keyid "$DAY40"
check "c5 new keyid-only server cert, new profile <ca>=new+old, day 40" OK keyid_new+old server_keyid "$DAY40"
check "c6 new full-AKI leaf (serial 2222), old profile <ca>=old, day 1" 20 old keyid_full "$DAY1"
check "c7 old easy-rsa leaf, trust new (keyid-only renewal), day 1" 20 new_keyid old_full "$DAY1"

echo "# (d) [new CA, old CA] as a chain"
expect "d1 renewed CA has the old CA's public key" OK \
    "$([ "$("$OPENSSL" x509 -in new_keyid.crt -noout -pubkey)" = "$("$OPENSSL" x509 -in old.crt -noout -pubkey)" ] && echo OK || echo different)"
expect "d2 renewed CA's issuer name is the old CA's subject" OK \
    "$([ "$("$OPENSSL" x509 -in new_keyid.crt -noout -issuer | sed 's/^issuer=//')" = "$("$OPENSSL" x509 -in old.crt -noout -subject | sed 's/^subject=//')" ] && echo OK || echo different)"
check "d3 renewed CA's signature verifies with its (= the old CA's) key" OK new_keyid new_keyid "$DAY1"
check "d4 openssl builds no path new CA -> old CA (self-signed is terminal)" 18 old new_keyid "$DAY1"

echo "# (e) CRLs after the renewal"
check "e1 keyid CRL, revoked old easy-rsa leaf, trust new+old, day 1" 23 keyid_new+old old_full_revoked "$DAY1" crl_new_keyid
check "e2 keyid CRL, revoked old keyid leaf, trust new, day 40" 23 new_keyid old_keyid_revoked "$DAY40" crl_new_keyid
check "e3 keyid CRL, valid keyid leaf, trust new, day 40" OK new_keyid keyid_keyid "$DAY40" crl_new_keyid
check "e4 easy-rsa CRL made after renewal (AKI serial 2222), valid old easy-rsa leaf, trust new+old" 3 keyid_new+old old_full "$DAY1" crl_new_full
check "e5 easy-rsa CRL made before renewal (AKI serial 1111), valid keyid leaf, trust new" 3 new_keyid keyid_keyid "$DAY1" crl_old_full

if command -v faketime >/dev/null 2>&1 && [ "$(faketime -f +40d date +%s 2>/dev/null || echo 0)" -gt $((NOW + 39 * 86400)) ]; then
    echo "# faketime cross-check (clock at day 40 instead of -attime)"
    out=$(faketime -f +40d "$OPENSSL" verify -CAfile old.pem server_keyid.crt 2>&1)
    expect "f1 faketime day 40: old profile <ca>=old rejects new server cert" 10 "$(printf '%s\n' "$out" | grep '^error [0-9]* at' | head -n 1)"
    out=$(faketime -f +40d "$OPENSSL" verify -CAfile new_keyid.pem old_keyid.crt 2>&1)
    expect "f2 faketime day 40: trust new accepts old keyid-only leaf" OK "$(case "$out" in *": OK") echo OK ;; *) echo "$out" ;; esac)"
else
    echo "# faketime not found: skipped the clock cross-check"
fi

if [ "$FAILED" -eq 0 ]; then
    echo "all findings hold"
    exit 0
fi
echo "$FAILED finding(s) did not hold"
exit 1
