#!/bin/sh
# Portainer stand-in (a test double): serves HTTPS with the certificate and key it is given,
# like Portainer does with --sslcert/--sslkey, and answers GET /api/system/status.
set -u

cert=/run/secrets/portainer.sslcert
key=/run/secrets/portainer.sslkey
port=9443
www=/tmp/standin-www
child=

fail() {
    echo "standin: $*" >&2
    exit 1
}

need_value() {
    [ "$2" -ge 2 ] || fail "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --sslcert) need_value "$1" $#; cert=$2; shift 2 ;;
        --sslcert=*) cert=${1#*=}; shift ;;
        --sslkey) need_value "$1" $#; key=$2; shift 2 ;;
        --sslkey=*) key=${1#*=}; shift ;;
        # Portainer spells it --bind-https [ADDR]:PORT; only the port matters here.
        --bind-https) need_value "$1" $#; port=${2##*:}; shift 2 ;;
        --bind-https=*) port=${1##*:}; shift ;;
        *) echo "standin: ignoring argument $1" >&2; shift ;;
    esac
done

# Given the Portainer agent's environment, stand in for the agent: it only has to run.
if [ -n "${AGENT_CLUSTER_ADDR:-}" ]; then
    trap 'exit 0' TERM INT
    while :; do sleep 1 & wait $!; done
fi

if [ "${STANDIN_FAIL_AT_START:-0}" = "1" ]; then
    fail "STANDIN_FAIL_AT_START=1: failing on purpose"
fi

[ -r "$cert" ] || fail "cannot read certificate $cert"
[ -r "$key" ] || fail "cannot read key $key"

fingerprint=$(openssl x509 -in "$cert" -noout -fingerprint -sha256) \
    || fail "$cert is not a PEM certificate"
fingerprint=$(echo "${fingerprint#*=}" | tr -d ':' | tr 'A-F' 'a-f')

if [ -n "${STANDIN_FAIL_IF_CERT_SHA256:-}" ]; then
    refused=$(echo "$STANDIN_FAIL_IF_CERT_SHA256" | tr -d ':' | tr 'A-F' 'a-f')
    [ "$refused" != "$fingerprint" ] \
        || fail "STANDIN_FAIL_IF_CERT_SHA256 matches the certificate: failing on purpose"
fi

# Fail at start, as a real server would, rather than serve a pair that cannot work.
cert_pub=$(openssl x509 -in "$cert" -noout -pubkey) || fail "cannot read the public key of $cert"
key_pub=$(openssl pkey -in "$key" -pubout) || fail "$key is not a usable private key"
[ "$cert_pub" = "$key_pub" ] || fail "key $key does not match certificate $cert"

# A fullchain file: send the leaf once, followed by the rest of the chain.
chain_args=
awk '/-----BEGIN CERTIFICATE-----/ { n++ } n > 1' "$cert" > /tmp/standin-chain.pem
if [ -s /tmp/standin-chain.pem ]; then
    chain_args="-cert_chain /tmp/standin-chain.pem"
fi

# s_server -HTTP sends each file as a complete HTTP response, so the files carry headers.
respond() {
    mkdir -p "$(dirname "$1")"
    printf 'HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$2" "${#3}" "$3" > "$1"
}
mkdir -p "$www"
respond "$www/api/system/status" application/json \
    "{\"Version\": \"2.19.4-standin\", \"InstanceID\": \"$(hostname)\"}"
respond "$www/index.html" text/html \
    "<!doctype html><title>Portainer stand-in</title><p>Portainer stand-in (test double).</p>"
cd "$www" || fail "cannot enter $www"

stop() {
    [ -n "$child" ] && kill "$child" 2>/dev/null
    exit 0
}
trap stop TERM INT

echo "standin: serving https on port $port, certificate sha256 $fingerprint" >&2
quick_exits=0
while :; do
    started=$(date +%s)
    # Backgrounded so that `wait` returns at once when TERM arrives and the trap can run.
    # shellcheck disable=SC2086  # chain_args is empty or two words on purpose
    openssl s_server -quiet -accept "$port" -cert "$cert" -key "$key" $chain_args -HTTP &
    child=$!
    wait "$child"
    status=$?
    child=
    # s_server normally survives bad clients; if it keeps dying at once, give up loudly.
    if [ $(($(date +%s) - started)) -lt 2 ]; then
        quick_exits=$((quick_exits + 1))
    else
        quick_exits=0
    fi
    [ "$quick_exits" -lt 5 ] || fail "openssl s_server keeps exiting (status $status)"
    echo "standin: openssl s_server exited with status $status; restarting" >&2
    sleep 0.2
done
