#!/usr/bin/env bash
# Identity benchmark (issue 14): cached composite tiles (z10-z16, gzip) of the metropolitan
# set over 127.0.0.1, from one release server with an identity provider (a JWKS file made
# here), asked four ways in turn (ROUNDS rounds, wrk each time): anonymous, with an access
# key, with a resident's ES256 token and with an RS256 one. Reports the median rates and
# each against the anonymous one. The signature check itself is `cargo bench --bench
# identity`.
#
#   benches/identity.sh                     # N=10, 10 s per wrk run, 3 rounds
#   BIN=/path/to/release N=5 DURATION=5s ROUNDS=2 benches/identity.sh
#
# Needs wrk, curl, python3 with PyJWT and cryptography (pip install pyjwt cryptography).
# Stops the server it started, by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
PORT=${PORT:-18795}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
# shellcheck source=benches/lib.sh
source benches/lib.sh

WORK=$(mktemp -d)
trap 'stop_server; rm -rf "$WORK"' EXIT

ISSUER=https://id.city.example/realms/residents
# Two key pairs, their JWKS, and a token signed by each.
python3 - "$WORK" "$ISSUER" <<'PY'
import json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
work, issuer = sys.argv[1], sys.argv[2]
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
keys = []
for kid, key, alg in [("rsa", rsa_key, RSAAlgorithm), ("ec", ec_key, ECAlgorithm)]:
    jwk = json.loads(alg.to_jwk(key.public_key()))
    jwk["kid"] = kid
    keys.append(jwk)
json.dump({"keys": keys}, open(f"{work}/jwks.json", "w"))
now = int(time.time())
claims = {"iss": issuer, "aud": "city-map", "sub": "f3c1a9e2-5b7d-4e8a-9c0f-1d2e3f4a5b6c",
          "iat": now, "exp": now + 3600, "roles": ["resident"]}
open(f"{work}/es256", "w").write(jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec"}))
open(f"{work}/rs256", "w").write(jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "rsa"}))
PY
KEY=$("$BIN/urbantile" --database "sqlite://$DB" keys add "bench-$(date +%s)" --read '*' | tail -1)

start_server "$DB" "$WORK/server.log" --oidc-issuer "$ISSUER" --oidc-audience city-map \
  --oidc-jwks "$WORK/jwks.json"
tile_urls > "$WORK/urls"
tiles=$(wc -l < "$WORK/urls")
warm_cache "$WORK/urls"

run() {
  AUTHORIZATION="$1" URLS_FILE="$WORK/urls" GZIP=1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" \
    --latency -s benches/cycle.lua "http://127.0.0.1:$PORT"
}
# Each way must be accepted (a 401 would be fast and wrong).
for auth in "Bearer $KEY" "Bearer $(cat "$WORK/es256")" "Bearer $(cat "$WORK/rs256")"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $auth" "http://127.0.0.1:$PORT/catalog")
  [ "$code" = 200 ] || { echo "a credential got $code"; exit 1; }
done
declare -A rates
rows=""
names=(anonymous key es256 rs256)
for r in $(seq 1 "$ROUNDS"); do
  row="| $r "
  for name in "${names[@]}"; do
    case $name in
      anonymous) auth="" ;;
      key) auth="Bearer $KEY" ;;
      *) auth="Bearer $(cat "$WORK/$name")" ;;
    esac
    out=$(run "$auth")
    if grep -q 'Non-2xx' <<<"$out"; then echo "$name: $(grep Non-2xx <<<"$out")"; fi
    rates[$name]+="$(wrk_field "$out" rps) "
    row+="| $(wrk_field "$out" rps) (p99 $(wrk_field "$out" p99)) "
  done
  rows+="$row|"$'\n'
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -A med
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  med[$name]=$(median ${rates[$name]})
done
pct() { python3 -c "print(round(100 * ${med[$1]} / ${med[anonymous]}, 1))"; }

report=${REPORT:-benches/results/identity-$(date -u +%Y%m%d-%H%M).md}
{
  echo "# Identity benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk -t2 -c$CONNECTIONS, $DURATION per run, on the same machine. Data: metro N=$N; all $tiles composite tiles z10-z16 cached (gzip), cycled."
  echo
  echo "| round | anonymous | access key | ES256 token | RS256 token |"
  echo "| --- | --- | --- | --- | --- |"
  printf '%s' "$rows"
  echo
  echo "Medians (tiles/s): anonymous ${med[anonymous]}, key ${med[key]} (**$(pct key)%**), ES256 token ${med[es256]} (**$(pct es256)%**), RS256 token ${med[rs256]} (**$(pct rs256)%**)."
} > "$report"
cat "$report"
