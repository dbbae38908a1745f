#!/usr/bin/env bash
# No function in the code that ships (host/, common/, sdk/, plugins/, vdev/;
# not tests) is longer than 80 lines, signature to closing brace: a longer
# one is split by meaning (a function per phase or concern). Functions are
# found by universal-ctags, which reports each one's first and last line.
#
#   function_length_test.sh SOURCE_DIR [LIMIT]
# Exit 0: none over the limit; 1: each one over it printed as
# "LINES FILE:LINE NAME", and each one ctags could not find the end of as
# "unmeasured FILE:LINE NAME"; 77: ctags is not universal-ctags (skipped).
# Lambdas count toward the function that holds them; functions a macro
# generates (plugin.hpp's entry point) are not seen.
set -euo pipefail
src=${1:?usage: function_length_test.sh SOURCE_DIR [LIMIT]}
limit=${2:-80}
if ! ctags --version 2>/dev/null | grep -q 'Universal Ctags'; then
  echo "SKIPPED: universal-ctags is not installed (apt-get install universal-ctags)"
  exit 77
fi
cd "$src"
long=$(ctags --fields=+ne --kinds-C=f --kinds-C++=f --languages=C,C++ -R -f - \
         host common sdk plugins vdev \
       | awk -F'\t' -v limit="$limit" '
           $4 == "f" && $2 !~ /(^|\/)tests\// {
             l = 0; e = 0
             for (i = 5; i <= NF; i++) {
               if ($i ~ /^line:/) l = substr($i, 6)
               if ($i ~ /^end:/) e = substr($i, 5)
             }
             if (e == 0) print "unmeasured", $2 ":" l, $1, "(ctags found no end: braces split by #if?)"
             else if (e - l + 1 > limit) print e - l + 1, $2 ":" l, $1
           }' | sort -rn)
if [ -n "$long" ]; then
  echo "functions over $limit lines (split them by meaning), or not measurable:"
  echo "$long"
  exit 1
fi
count=$(ctags --kinds-C=f --kinds-C++=f --languages=C,C++ -R -f - host common sdk plugins vdev | wc -l)
echo "ok: $count functions, none over $limit lines"
