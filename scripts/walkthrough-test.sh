#!/usr/bin/env bash
# Follows the template README's walkthrough literally: runs the shell block
# between "<!-- walkthrough: begin -->" and "<!-- walkthrough: end -->" in a
# new directory, every command traced, stopping at the first that fails.
#   scripts/walkthrough-test.sh README.md [WORK-DIR]
# As root, `sudo CMD` runs CMD (no sudo needed). The caller provides the
# installed SDK (the packages: scripts/package-test.sh; or a prefix on PATH,
# PKG_CONFIG_PATH and CMAKE_PREFIX_PATH) and removes what the walkthrough
# installed.
set -euo pipefail
readme=${1:?usage: walkthrough-test.sh README.md [WORK-DIR]}
work=${2:-$(mktemp -d)}
block=$(awk '/<!-- walkthrough: begin -->/ {on = 1; next}
             /<!-- walkthrough: end -->/ {on = 0}
             on && !/^```/' "$readme")
[ -n "$block" ] || { echo "walkthrough-test: no walkthrough block in $readme"; exit 1; }
mkdir -p "$work"
cd "$work"
prelude='set -euo pipefail -x'
if [ "$(id -u)" -eq 0 ]; then
  prelude+=$'\nsudo() { "$@"; }'
fi
bash -c "$prelude"$'\n'"$block"
echo "walkthrough-test: every step of the walkthrough passed"
