#!/usr/bin/env bash
# The Debian packages, checked the way an operator meets them ([package]).
#   package_test.sh build   BUILD_DIR OUT   cpack the Release build into OUT
#   package_test.sh inspect SRC OUT [static-agent]
#       lintian (no errors), Depends from shlibdeps, conffiles, files in
#       place, `systemd-analyze verify` of every unit, `systemd-analyze
#       security` exposure <= 2.0 for verifier/registrar; with static-agent
#       (VOUCH_STATIC_AGENT), the packaged agent is the self-contained one
#       (static_agent_test.sh) and its Depends name no gRPC, protobuf or Abseil
#   package_test.sh install OUT             install, install again, remove,
#       purge - in a private mount namespace whose /etc, /usr and /var are
#       overlays on throw-away directories, so the machine running the test is
#       untouched (needs root: exits 77, a CTest skip, otherwise); checks the
#       users, files, conffiles, and that purge removes config and state
set -euo pipefail
mode="$1"
shift
fail() { echo "FAIL: $*" >&2; exit 1; }
PACKAGES=(vouch-agent vouch-verifier vouch-registrar vouchctl libvouch-dev)
DAEMONS=(agent verifier registrar)

deb_of() { ls "$OUT/$1"_*.deb 2>/dev/null | head -n1; }

case "$mode" in
build)
  BUILD="$1" OUT="$2"
  rm -rf "$OUT"
  mkdir -p "$OUT"
  cpack --config "$BUILD/CPackConfig.cmake" -B "$OUT/.cpack" -G DEB >/dev/null
  mv "$OUT"/.cpack/*.deb "$OUT"/
  rm -rf "$OUT/.cpack"
  ls -l "$OUT"
  for p in "${PACKAGES[@]}"; do [ -n "$(deb_of "$p")" ] || fail "no $p package"; done
  ;;

inspect)
  SRC="$1" OUT="$2" STATIC_AGENT="${3:-}"
  for p in "${PACKAGES[@]}"; do [ -n "$(deb_of "$p")" ] || fail "no $p package"; done
  echo "== lintian"
  lintian --fail-on error "$OUT"/*.deb || fail "lintian errors"
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  for p in "${PACKAGES[@]}"; do dpkg-deb -x "$(deb_of "$p")" "$root"; done
  for d in "${DAEMONS[@]}"; do
    deb="$(deb_of "vouch-$d")"
    depends="$(dpkg-deb -f "$deb" Depends)"
    echo "vouch-$d Depends: $depends"
    # shlibdeps found the shared libraries (libc, gRPC, ...), and the
    # maintainer scripts' adduser is declared.
    grep -q 'libc6' <<<"$depends" || fail "vouch-$d: no libc6 in Depends"
    if [ "$d" = agent ] && [ "$STATIC_AGENT" = static-agent ]; then
      # gRPC, protobuf and Abseil are in the binary, not in Depends.
      grep -E 'libgrpc|libprotobuf|libabsl' <<<"$depends" &&
        fail "vouch-agent (static) depends on the libraries linked into it"
    else
      grep -q 'libgrpc++' <<<"$depends" || fail "vouch-$d: no libgrpc++ in Depends"
    fi
    grep -q 'libsystemd0' <<<"$depends" || fail "vouch-$d: no libsystemd0 in Depends"
    grep -q 'adduser' <<<"$depends" || fail "vouch-$d: no adduser in Depends"
    conffiles="$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
    [ "$conffiles" = "/etc/vouch/$d.toml" ] || fail "vouch-$d conffiles: '$conffiles'"
    for f in "/usr/bin/vouch-$d" "/etc/vouch/$d.toml" \
      "/lib/systemd/system/vouch-$d.service" "/usr/share/man/man8/vouch-$d.8.gz" \
      "/usr/share/doc/vouch-$d/copyright"; do
      [ -e "$root$f" ] || fail "vouch-$d: $f missing"
    done
    grep -q '^Type=notify$' "$root/lib/systemd/system/vouch-$d.service" ||
      fail "vouch-$d.service is not Type=notify"
    # The package's config is the sample the suite already loads.
    cmp -s "$root/etc/vouch/$d.toml" "$SRC/deploy/config/$d.toml" ||
      fail "vouch-$d: /etc/vouch/$d.toml differs from deploy/config/$d.toml"
  done
  grep -q 'tpm-udev' <<<"$(dpkg-deb -f "$(deb_of vouch-agent)" Depends)" ||
    fail "vouch-agent: no tpm-udev (group tss) in Depends"
  if [ "$STATIC_AGENT" = static-agent ]; then
    echo "== the packaged (stripped) agent is the self-contained one"
    "$(dirname "$0")/static_agent_test.sh" "$root/usr/bin/vouch-agent" ||
      fail "the packaged vouch-agent is not self-contained"
    # What it embeds carries its copyright with it.
    for embedded in libgrpc++-dev libprotobuf-dev libabsl-dev libre2-dev \
      libc-ares-dev; do
      grep -q -- "-------- $embedded --------" \
        "$root/usr/share/doc/vouch-agent/copyright" ||
        fail "vouch-agent's copyright lacks $embedded's"
    done
  fi
  [ -x "$root/usr/bin/vouchctl" ] || fail "vouchctl missing"
  [ -e "$root/usr/share/man/man1/vouchctl.1.gz" ] || fail "vouchctl(1) missing"
  [ -f "$root/usr/include/vouch/sdk/client.h" ] || fail "SDK headers missing"
  [ -f "$root/usr/lib/x86_64-linux-gnu/cmake/Vouch/VouchConfig.cmake" ] ||
    [ -n "$(find "$root/usr/lib" -name VouchConfig.cmake)" ] || fail "VouchConfig.cmake missing"
  [ -n "$(find "$root/usr/lib" -name libvouch_sdk.a)" ] || fail "libvouch_sdk.a missing"
  man -l "$root/usr/share/man/man8/vouch-verifier.8.gz" 2>&1 >/dev/null |
    grep . && fail "vouch-verifier(8) has roff warnings"
  echo "== systemd-analyze verify"
  # The units the packages' units refer to (network-online.target, ...) come
  # from this machine; the man pages were checked above (verify runs `man`
  # on the host, where they are not installed; the install cycle verifies
  # with them).
  cp -an /usr/lib/systemd/system/. "$root/lib/systemd/system/"
  for d in "${DAEMONS[@]}"; do
    out="$(systemd-analyze verify --man=no --root="$root" \
      "$root/lib/systemd/system/vouch-$d.service" 2>&1)" || fail "verify vouch-$d: $out"
    # verify exits 0 on some problems: any message is one.
    [ -z "$out" ] || fail "verify vouch-$d.service: $out"
    echo "vouch-$d.service: ok"
  done
  echo "== systemd-analyze security (exposure, goal <= 2.0)"
  for d in "${DAEMONS[@]}"; do
    unit="$root/lib/systemd/system/vouch-$d.service"
    level="$(systemd-analyze security --offline=true "$unit" 2>/dev/null |
      sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p')"
    [ -n "$level" ] || fail "no exposure level for vouch-$d"
    echo "vouch-$d.service: $level"
    if [ "$d" != agent ]; then
      awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' ||
        fail "vouch-$d.service exposure $level > 2.0"
    fi
  done
  ;;

install)
  OUT="$1"
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED: installing the packages needs root (a private mount namespace with overlays)"
    exit 77
  fi
  if [ -z "${VOUCH_IN_PACKAGE_NAMESPACE:-}" ]; then
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    # Everything dpkg and adduser write lands in $scratch; /run/systemd is
    # hidden so the maintainer scripts do not talk to the host's systemd.
    rc=0
    VOUCH_IN_PACKAGE_NAMESPACE="$scratch" unshare --mount --propagation private \
      "$0" install "$OUT" || rc=$?
    exit "$rc"
  fi
  scratch="$VOUCH_IN_PACKAGE_NAMESPACE"
  for d in etc usr var; do
    mkdir -p "$scratch/$d/up" "$scratch/$d/work"
    mount -t overlay overlay \
      -o "lowerdir=/$d,upperdir=$scratch/$d/up,workdir=$scratch/$d/work" "/$d"
  done
  if [ -d /run/systemd ]; then mount -t tmpfs tmpfs /run/systemd; fi
  debs=()
  for p in "${PACKAGES[@]}"; do debs+=("$(deb_of "$p")"); done
  export DEBIAN_FRONTEND=noninteractive
  check_installed() {
    for d in "${DAEMONS[@]}"; do
      getent passwd "vouch-$d" >/dev/null || fail "user vouch-$d missing"
      [ "$(getent passwd "vouch-$d" | cut -d: -f3)" -ne 0 ] || fail "vouch-$d is root"
      [ -f "/etc/vouch/$d.toml" ] || fail "/etc/vouch/$d.toml missing"
      [ -x "/usr/bin/vouch-$d" ] || fail "/usr/bin/vouch-$d missing"
      dpkg-query -W -f='${Conffiles}\n' "vouch-$d" | grep -q "/etc/vouch/$d.toml" ||
        fail "vouch-$d: conffile not registered"
      "/usr/bin/vouch-$d" --config "/etc/vouch/$d.toml" --print-config >/dev/null ||
        fail "vouch-$d cannot read its installed config"
    done
    id -nG vouch-agent | tr ' ' '\n' | grep -qx tss || fail "vouch-agent not in group tss"
    vouchctl --version >/dev/null || fail "vouchctl does not run"
  }
  echo "== install"
  dpkg -i "${debs[@]}"
  check_installed
  for d in "${DAEMONS[@]}"; do
    out="$(systemd-analyze verify "/lib/systemd/system/vouch-$d.service" 2>&1)" ||
      fail "verify installed vouch-$d: $out"
    [ -z "$out" ] || fail "verify installed vouch-$d.service: $out"
  done
  echo "== install the same version again (upgrade in place)"
  echo "# a local edit" >>/etc/vouch/verifier.toml
  dpkg -i --force-confold "${debs[@]}"
  check_installed
  grep -q '^# a local edit$' /etc/vouch/verifier.toml || fail "upgrade lost a local config edit"
  mkdir -p /var/lib/vouch && touch /var/lib/vouch/aik.ctx
  echo "== remove"
  dpkg -r vouch-agent vouch-verifier vouch-registrar vouchctl libvouch-dev
  [ ! -e /usr/bin/vouch-verifier ] || fail "remove left /usr/bin/vouch-verifier"
  [ -f /etc/vouch/verifier.toml ] || fail "remove took the config (only purge may)"
  echo "== purge"
  dpkg -P vouch-agent vouch-verifier vouch-registrar  # the others have no conffiles
  for d in "${DAEMONS[@]}"; do
    [ ! -e "/etc/vouch/$d.toml" ] || fail "purge left /etc/vouch/$d.toml"
    [ ! -e "/lib/systemd/system/vouch-$d.service" ] || fail "purge left the unit"
  done
  [ ! -e /var/lib/vouch ] || fail "purge left /var/lib/vouch"
  echo "install, reinstall, remove and purge: ok"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
