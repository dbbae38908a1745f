#!/usr/bin/env bash
# Every man page in MAN_DIR renders without a warning: `groff -man -ww -z`
# (every warning on) and, where man-db is installed, `man --warnings -l` at
# 80 columns, as a reader's terminal would show it. Any line either prints on
# stderr fails the test.
#
#   man_render_test.sh MAN_DIR
# Exit 0: no warnings; 1: each warning printed with its page; 77: groff is
# not installed (skipped; scripts/build.sh installs groff-base and man-db).
set -euo pipefail
man=${1:?usage: man_render_test.sh MAN_DIR}
if ! command -v groff > /dev/null; then
    echo "SKIPPED: groff is not installed (apt-get install groff-base man-db)"
    exit 77
fi
pages=("$man"/*.[1-8])
[ -e "${pages[0]}" ] || { echo "no man pages in $man"; exit 1; }
failed=0
for page in "${pages[@]}"; do
    warnings=$(groff -man -ww -z "$page" 2>&1 || echo "groff failed with status $?")
    if command -v man > /dev/null; then
        rendered=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 > /dev/null ||
                   echo "man failed with status $?")
        warnings+=${warnings:+${rendered:+$'\n'}}$rendered
    fi
    if [ -n "$warnings" ]; then
        echo "$page:"
        echo "$warnings"
        failed=1
    fi
done
[ "$failed" -eq 0 ] && echo "ok: ${#pages[@]} pages render without warnings"
exit "$failed"
