#!/usr/bin/env bash
# Build the Portainer stand-in image with no base image, if its tag is missing, and print the
# image name on stdout. `--print-name` prints the name without building.
#
# The tag is a short hash of this folder and of the host files copied into the image, so a
# change to either gives a new tag and a rebuild.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository="localhost/phoenix-portainer-standin"
applets=(sh awk cat date dirname echo hostname kill mkdir sleep tr)

log() { printf 'standin build: %s\n' "$*" >&2; }

[[ -x /bin/busybox ]] || { log "/bin/busybox missing (apt-get install busybox-static)"; exit 1; }
[[ -x /usr/bin/openssl ]] || { log "/usr/bin/openssl missing (apt-get install openssl)"; exit 1; }
if ldd /bin/busybox >/dev/null 2>&1; then
    log "/bin/busybox is dynamically linked; install busybox-static"
    exit 1
fi

# The dynamic loader and the libraries openssl needs, as ldd names them (vdso has no path).
mapfile -t libraries < <(ldd /usr/bin/openssl | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }')
host_files=(/bin/busybox /usr/bin/openssl "${libraries[@]}")

tag="$(
    {
        cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        sha256sum "${host_files[@]}"
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
mkdir -p "$root"/{bin,usr/bin,etc,standin,run/secrets,usr/lib/ssl}
install -m 1777 -d "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in "${applets[@]}"; do
    ln -s busybox "$root/bin/$applet"
done
cp /usr/bin/openssl "$root/usr/bin/openssl"
for library in "${libraries[@]}"; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
done
# openssl reads its default config at start; an empty one keeps it from complaining.
: > "$root/usr/lib/ssl/openssl.cnf"
printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
install -m 0755 "$here/entrypoint.sh" "$root/standin/entrypoint.sh"

log "importing $image"
tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
    | docker import \
        --change 'ENTRYPOINT ["/bin/sh", "/standin/entrypoint.sh"]' \
        --change 'ENV PATH=/bin:/usr/bin' \
        --change 'EXPOSE 9443/tcp' \
        --change 'LABEL org.opencontainers.image.title="Portainer stand-in (test double)"' \
        --message "phoenix-certbot Portainer stand-in $tag" \
        - "$image" >/dev/null

echo "$image"
