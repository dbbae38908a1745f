#!/usr/bin/env bash
# The bash completion script, sourced into a bash without any other
# completion, completes as a user would see it: COMPREPLY after
#   devhost ch<TAB>                         check
#   devhost run --<TAB>                     run's long options, as run --help lists them
#   devhost scan --class <TAB>              the classes of the plugins on the line's
#                                           --plugin-path (none without it, for a
#                                           devhost that has no plugins of its own)
#   devhost reset-failed CONFIG <TAB>       the same classes
# and it reads a config's [device NAME] names as text, running nothing.
#
#   completion_test.sh SCRIPT DEVHOST PLUGIN_DIR
# Exit 0: as expected; 1: each difference printed.
set -euo pipefail
script=$(realpath "${1:?usage: completion_test.sh SCRIPT DEVHOST PLUGIN_DIR}")
devhost=${2:?usage: completion_test.sh SCRIPT DEVHOST PLUGIN_DIR}
plugins=${3:?usage: completion_test.sh SCRIPT DEVHOST PLUGIN_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A devhost alone in a directory: it finds no plugins of its own (none at
# ../lib/devhost/plugins), so classes can only come from --plugin-path.
mkdir "$tmp/bin"
cp "$devhost" "$tmp/bin/devhost"
failed=0

# COMPREPLY, sorted, one line, for the words given (the last is the word
# being completed).
complete_words() {
    PATH="$tmp/bin:$PATH" timeout 30 env -u DEVHOST_PLUGIN_PATH bash --norc --noprofile -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
        _devhost
        printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ $//"' bash "$script" "$@"
}
expect() {  # EXPECTED WORDS...
    local want=$1 got
    shift
    got=$(complete_words "$@")
    if [ "$got" != "$want" ]; then
        echo "[$*]<TAB>: expected '$want', got '$got'"
        failed=1
    fi
}

expect "check" devhost ch
expect "check" devhost --log-level debug ch
expect "reload reset reset-failed run" devhost r
run_options=$("$devhost" run --help | awk '/^options:$/ { i = 1; next } /^$/ { i = 0 } i' |
              grep -oE -- '--[a-z][a-z-]*' | sort | tr '\n' ' ' | sed 's/ $//')
[ -n "$run_options" ] || { echo "devhost run --help lists no options"; exit 1; }
expect "$run_options" devhost run --
expect "--allow-faults --help --log-file --log-level --output --plugin-path" devhost run --
expect "--allow-faults" devhost check --allow
expect "--allow-faults" devhost probe --allow
expect "--all" devhost scan --al
# --allow-faults is a flag: the word after it is the command, then a file.
expect "check" devhost --allow-faults ch
expect "--json" devhost scan --j
classes=$("$devhost" --plugin-path "$plugins" plugins --json | grep -oE '"class":"[a-z0-9-]+"' |
          sed 's/^"class":"//; s/"$//' | sort | tr '\n' ' ' | sed 's/ $//')
case " $classes " in
    *" loop "*) ;;
    *) echo "the plugins in $plugins serve no class 'loop': '$classes'"; exit 1 ;;
esac
expect "$classes" devhost --plugin-path "$plugins" scan --class ""
expect "loop" devhost --plugin-path "$plugins" scan --class lo
expect "$classes" devhost scan --plugin-path "$plugins" --class ""
expect "" devhost scan --class ""
expect "reset reset-failed" devhost res
expect "--help --json --socket" devhost status --
expect "--help --socket" devhost call --
expect "status" devhost --socket /nonexistent st
# call's DEVICE from the running serve: none answers on this socket.
expect "" devhost --socket "$tmp/no-socket" call ""
expect "--help --log-file --log-level" devhost reset-failed --
expect "loop" devhost --plugin-path "$plugins" reset-failed c.ini lo
expect "loop" devhost --plugin-path "$plugins" reset-failed c.ini serial lo
expect "debug" devhost --log-level deb
expect "run" devhost help ru

# File names come back whole: a name with a space or a glob character is
# one word, never split or expanded (a '*' would list the directory).
mkdir "$tmp/files"
touch "$tmp/files/a b.ini" "$tmp/files/*" "$tmp/files/zz.ini"
expect "$tmp/files/*" devhost run "$tmp/files/*"
expect "$tmp/files/a b.ini" devhost run "$tmp/files/a"

# Device names of a config, from its [device NAME] headers; a header that
# would run a command if anything evaluated it is only text.
cat > "$tmp/c.ini" << 'EOF'
[host]
log-level = info
[device modem]
path = /dev/ttyS0
  [device  printer ]
# [device commented]
[virtual peer]
[device $(touch${IFS}PWNED)]
[device `touch${IFS}PWNED2`]
EOF
devices=$(cd "$tmp" && bash --norc --noprofile -c '. "$1"; _devhost_config_devices c.ini | tr "\n" " "' bash "$script")
if [ "$devices" != 'modem printer $(touch${IFS}PWNED) `touch${IFS}PWNED2` ' ]; then
    echo "device names of c.ini: got '$devices'"
    failed=1
fi
if [ -e "$tmp/PWNED" ] || [ -e "$tmp/PWNED2" ]; then
    echo "reading a config's device names ran a command from it"
    failed=1
fi
[ "$failed" -eq 0 ] && echo "ok: commands, options, classes ($classes), device names"
exit "$failed"
