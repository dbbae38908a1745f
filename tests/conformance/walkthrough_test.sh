#!/usr/bin/env bash
# The template README's walkthrough, followed literally
# (scripts/walkthrough-test.sh) against this build installed into a
# temporary prefix (cmake --install), the prefix first on PATH,
# PKG_CONFIG_PATH and CMAKE_PREFIX_PATH. scripts/package-test.sh runs the
# same walkthrough against the installed Debian packages.
#   walkthrough_test.sh BUILD-DIR SOURCE-DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" ||
  { cat "$tmp/install.log"; exit 1; }
pc=$(dirname "$(find "$tmp/prefix" -name devhost.pc | head -n 1)")
export PATH="$tmp/prefix/bin:$PATH" PKG_CONFIG_PATH="$pc" CMAKE_PREFIX_PATH="$tmp/prefix"
"$src/scripts/walkthrough-test.sh" "$tmp/prefix/share/devhost/plugin-template/README.md" "$tmp/work"
