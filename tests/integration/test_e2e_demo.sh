#!/usr/bin/env bash
# `vigil demo` as `make demo` runs it: exits 0, prints both pages and the table.
set -euo pipefail
vigil="$1"
out=$("$vigil" demo)
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -q 'PAGE firing \[high\] workflow-failed workflow:v1:customer-360-refresh:public runtime running -> failed' <<<"$out" || fail "workflow-failed page missing"
grep -q 'PAGE firing \[critical\] resource-error service:v2:orders-api:sandbox status active -> error' <<<"$out" || fail "resource-error page missing"
[ "$(grep -c '^PAGE' <<<"$out")" -eq 2 ] || fail "expected exactly 2 pages"
grep -Eq '^ +NAME +\| VERSION \| +TYPE +\| WORKSPACE \| STATUS \| +RUNTIME +\| +OWNER' <<<"$out" || fail "table header missing"
grep -Eq '^ ingestion-delivery-events +\| v1 +\| workflow +\| public +\| active +\| succeeded +\| iamgroot' <<<"$out" || fail "ingestion-delivery-events row"
grep -Eq '^ ingestion-shipment-orders +\| v1 +\| workflow +\| public +\| active +\| succeeded +\| iamgroot' <<<"$out" || fail "ingestion-shipment-orders row"
grep -Eq '^ customer-360-refresh +\| v1 +\| workflow +\| public +\| active +\| failed' <<<"$out" || fail "customer-360-refresh row"
grep -Eq '^ orders-api +\| v2 +\| service +\| sandbox +\| error +\| running' <<<"$out" || fail "orders-api row"
echo "demo ok"
