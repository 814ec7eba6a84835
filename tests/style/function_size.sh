#!/usr/bin/env bash
# function_size.sh BUILD_DIR FILE...
#   Fails, naming each one, when a function in FILE... is longer than 100
#   lines (blank lines and comments included), as clang-tidy's
#   readability-function-size counts them; so is a function in a header of
#   src/verifier or src/agent that FILE... includes. BUILD_DIR holds the
#   compile_commands.json the files are parsed with.
# function_size.sh --self-test FIXTURE
#   Passes only if the check fails on FIXTURE (parsed as plain C++17) and
#   names its long function: proof that the check catches what it claims.
set -u
tidy=$(command -v clang-tidy || command -v clang-tidy-14) || {
  echo "clang-tidy not found (scripts/deps.txt installs it)" >&2
  exit 1
}
check=("$tidy" --quiet --checks='-*,readability-function-size'
  --config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 100}]}'
  --warnings-as-errors='*' --extra-arg=-Wno-unknown-warning-option)

if [ "${1:-}" = "--self-test" ]; then
  out=$("${check[@]}" "$2" -- -std=c++17 2>&1)
  rc=$?
  if [ "$rc" -ne 0 ] && echo "$out" | grep -q "function 'LongFunction' exceeds"; then
    echo "the check caught LongFunction"
    exit 0
  fi
  echo "the check did not catch LongFunction in $2 (exit $rc):" >&2
  echo "$out" >&2
  exit 1
fi

build=$1
shift
# Two clang-tidy processes at a time; each exits non-zero on a long function.
out=$(printf '%s\n' "$@" | xargs -P 2 -n 4 "${check[@]}" -p "$build" \
  --header-filter='src/(verifier|agent)/' 2>&1)
rc=$?
long=$(echo "$out" | grep -E "exceeds recommended size|lines including whitespace|error:")
if [ "$rc" -ne 0 ] || [ -n "$long" ]; then
  echo "functions over 100 lines (split them; docs/development.md):" >&2
  echo "${long:-$out}" >&2
  exit 1
fi
echo "$# files: no function over 100 lines"
