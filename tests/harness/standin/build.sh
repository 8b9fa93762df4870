#!/usr/bin/env bash
# Build the Portainer stand-in image with no base image, if its tag is missing, and print the
# image name on stdout. `--print-name` prints the name without building.
#
# The image holds Debian's static busybox (a shell for debugging) and one static Go binary
# built here from standin.go with Debian's golang-go (CGO_ENABLED=0, standard library only,
# no network). The tag is a short hash of this folder, busybox and the Go version, so a change
# to any of them gives a new tag and a rebuild; an existing tag is never rebuilt.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository="localhost/phoenix-portainer-standin"
applets=(sh cat echo hostname kill ls ps sleep)

log() { printf 'standin build: %s\n' "$*" >&2; }

[[ -x /bin/busybox ]] || { log "/bin/busybox missing (apt-get install busybox-static)"; exit 1; }
if ldd /bin/busybox >/dev/null 2>&1; then
    log "/bin/busybox is dynamically linked; install busybox-static"
    exit 1
fi
command -v go >/dev/null || { log "go missing (apt-get install golang-go)"; exit 1; }

tag="$(
    {
        cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        sha256sum /bin/busybox
        go version
    } | sha256sum | cut -c1-12
)"
image="$repository:$tag"

if [[ "${1:-}" == "--print-name" ]]; then
    echo "$image"
    exit 0
fi

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,standin,run/secrets}
install -m 1777 -d "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in "${applets[@]}"; do
    ln -s busybox "$root/bin/$applet"
done

started=$SECONDS
# Go keeps its build cache between runs (a rebuild after a change to standin.go takes a few
# seconds; the first build compiles the standard library, about 40 s on 2 cores).
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/go-build}"
export GOPATH="${GOPATH:-${HOME:-/tmp}/go}"
(
    cd "$here"
    CGO_ENABLED=0 GOPROXY=off GOFLAGS=-trimpath go build -ldflags='-s -w' -o "$root/standin/standin" .
)
log "compiled standin.go in $((SECONDS - started)) s"
printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

log "importing $image"
tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
    | docker import \
        --change 'ENTRYPOINT ["/standin/standin"]' \
        --change 'ENV PATH=/bin' \
        --change 'EXPOSE 9443/tcp 9001/tcp' \
        --change 'LABEL org.opencontainers.image.title="Portainer stand-in (test double)"' \
        --message "phoenix-certbot Portainer stand-in $tag" \
        - "$image" >/dev/null

echo "$image"
