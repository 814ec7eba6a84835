# Shared by scripts/test and scripts/demo. Source it; do not run it.
# Installs the Debian packages of scripts/deps.txt that are missing (only
# those: a second run installs nothing), then offers build helpers.

VOUCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

vouch_log() { printf '==> %s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

vouch_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

vouch_missing_packages() {
  local pkg
  grep -v '^[[:space:]]*#' "$VOUCH_ROOT/scripts/deps.txt" | awk 'NF {print $1}' |
    while read -r pkg; do
      if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        echo "$pkg"
      fi
    done
}

vouch_install_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    vouch_log "not a Debian system: install the packages of scripts/deps.txt yourself (see bazel-free/README.md)"
    return 0
  fi
  local missing
  missing="$(vouch_missing_packages | tr '\n' ' ')"
  if [ -z "${missing// /}" ]; then
    vouch_log "all packages of scripts/deps.txt are installed"
    return 0
  fi
  vouch_log "installing: $missing"
  export DEBIAN_FRONTEND=noninteractive
  vouch_sudo apt-get update -q
  # shellcheck disable=SC2086
  vouch_sudo apt-get install -y -q --no-install-recommends $missing
}

# vouch_build PRESET [CMAKE -D ARGS...]: configure (once; the -D arguments
# each time) and build with every core.
vouch_build() {
  local preset="$1"
  shift
  vouch_log "configuring preset '$preset'"
  cmake --preset "$preset" -S "$VOUCH_ROOT" "$@" >/dev/null
  vouch_log "building preset '$preset'"
  cmake --build --preset "$preset" -j "$(nproc)"
}
