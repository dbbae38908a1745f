#!/usr/bin/env bash
# What devhost accepts is in its man pages. Nothing is listed by hand here:
# the lists come from the program itself.
#   devhost(1): every command of `devhost --help` has a .SS section, every
#     long option of `devhost --help` and `devhost CMD --help` is a .TP tag
#     of OPTIONS and is named in each of its commands' sections, and every
#     exit code of those helps is a .TP tag of EXIT STATUS;
#   devhost.ini(5): every [host], [mqtt] and [metrics] key and every key of every [device] (as
#     `devhost check` lists them when given an unknown one) is a .TP tag of
#     its section; every step verb (as check lists them for an unknown step)
#     is a .TP tag of STEPS, and every argument of each verb (as check lists
#     them for an unknown argument) is in that verb's tag and a tag of
#     "Arguments".
#
#   man_content_test.sh DEVHOST MAN_DIR
# Exit 0: all there; 1: each one missing printed.
set -euo pipefail
devhost=$(realpath "${1:?usage: man_content_test.sh DEVHOST MAN_DIR}")
man=${2:?usage: man_content_test.sh DEVHOST MAN_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
missing=()
miss() { missing+=("$1"); }

# A page's source as text: \- is -, font changes, \& and \e dropped or read.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\e/\\/g' "$1"; }
# The lines of section SECTION (.SH or .SS heading, quotes dropped) of a page.
section() { awk -v want="$2" '/^\.S[HS] /{ h = $0; sub(/^\.S[HS] /, "", h); gsub(/"/, "", h);
                                        inside = (h == want || index(h, want " ") == 1); next } inside' <<< "$1"; }
# The tags (the line after each .TP) of some man text.
tags() { awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }' <<< "$1"; }
# Whether a tag line holds WORD, bounded by a non-name character.
holds() { grep -qE -- "(^|[^a-z-])$2([^a-z-]|\$)" <<< "$1"; }
# The lines of a help's block that starts at HEADER and ends at a blank line.
block() { awk -v header="$2" '$0 == header { inside = 1; next } /^$/ { inside = 0 } inside' <<< "$1"; }

page1=$(plain "$man/devhost.1")
page5=$(plain "$man/devhost.ini.5")
global=$("$devhost" --help)
commands=$(block "$global" "commands:" | awk '/^  [a-z]/ { print $1 }')
[ -n "$commands" ] || { echo "devhost --help lists no commands (has its format changed?)"; exit 1; }

option_tags=$(tags "$(section "$page1" OPTIONS)")
exit_tags=$(tags "$(section "$page1" "EXIT STATUS")")
check_options() {  # HELP_TEXT COMMAND_OR_EMPTY
    local o
    for o in $(block "$1" "options:" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        holds "$option_tags" "$o" || miss "devhost.1: option $o has no .TP entry under OPTIONS"
        if [ -n "$2" ] && [ "$o" != --help ] && ! holds "$(section "$page1" "$2")" "$o"; then
            miss "devhost.1: option $o is not named in the section of '$2'"
        fi
    done
    for o in $(block "$1" "exit codes:" | awk '/^  [0-9]/ { print $1 }'); do
        grep -qx "\.B $o" <<< "$exit_tags" || miss "devhost.1: exit code $o has no .TP entry under EXIT STATUS"
    done
}
check_options "$global" ""
for c in $commands; do
    grep -qE "^\.SS \"?$c( |\"|\$)" <<< "$page1" || miss "devhost.1: command '$c' has no .SS section"
    check_options "$("$devhost" "$c" --help)" "$c"
done

# devhost.ini(5), from what `devhost check` says of unknown names.
config="$tmp/probe.ini"
{
    printf '[host]\nzq = 1\n[device d]\nclass = loop\npath = loop:x\nno-such-key = 1\n'
    printf 'step = no-such-step\n'
    printf '[mqtt]\nzq = 1\nbroker = mqtt://h\n'
    printf '[metrics]\nzq = 1\nlisten = 127.0.0.1:9464\n'
} > "$config"
# Checked by its relative name, with a two-letter unknown key: the [host]
# key list is long (284 characters at most per error line), and a long
# $TMPDIR must not push it past that.
said=$(cd "$tmp" && "$devhost" check probe.ini 2>&1 || true)
list_after() { grep -oE -- "$1[^)]*" <<< "$said" | head -1 | sed -E -e "s/^$1//" -e 's/, / /g' -e 's/ or / /g'; }
host_keys=$(list_after '\[host\] zq: unknown key \(expected ')
device_keys=$(list_after 'and for every device: ')
mqtt_keys=$(list_after '\[mqtt\] zq: unknown key \(expected ')
metrics_keys=$(list_after '\[metrics\] zq: unknown key \(expected ')
verbs=$(list_after "unknown step 'no-such-step' \\(expected one of ")
for what in host_keys device_keys mqtt_keys metrics_keys verbs; do
    if [ -z "${!what}" ]; then
        echo "devhost check did not list the $what (has its message changed?):"
        echo "$said"
        exit 1
    fi
done
host_tags=$(tags "$(section "$page5" "[host]")")
for k in $host_keys; do
    grep -qE "^\.B[IR]? \"?$k( |=|\"|\$)" <<< "$host_tags" || miss "devhost.ini.5: [host] key '$k' has no .TP entry"
done
mqtt_tags=$(tags "$(section "$page5" "[mqtt]")")
for k in $mqtt_keys; do
    grep -qE "^\.B[IR]? \"?$k( |=|\"|\$)" <<< "$mqtt_tags" || miss "devhost.ini.5: [mqtt] key '$k' has no .TP entry"
done
metrics_tags=$(tags "$(section "$page5" "[metrics]")")
for k in $metrics_keys; do
    grep -qE "^\.B[IR]? \"?$k( |=|\"|\$)" <<< "$metrics_tags" || miss "devhost.ini.5: [metrics] key '$k' has no .TP entry"
done
device_tags=$(tags "$(section "$page5" "[device NAME]")")
for k in $device_keys; do
    grep -qE "^\.B[IR]? \"?$k( |=|\"|\$)" <<< "$device_tags" || miss "devhost.ini.5: [device] key '$k' has no .TP entry"
done

# Each verb's arguments: a config with every verb in every positional form,
# each with an argument no verb has; check names the ones the verb takes.
{
    printf '[device d]\nclass = loop\npath = loop:x\n'
    for v in $verbs; do
        printf 'step = %s zzz=1\nstep = %s "x" zzz=1\nstep = %s x zzz=1\nstep = %s 1s zzz=1\n' "$v" "$v" "$v" "$v"
    done
} > "$config"
said=$("$devhost" check "$config" 2>&1 || true)
step_tags=$(tags "$(section "$page5" STEPS)")
argument_tags=$(tags "$(section "$page5" Arguments)")
for v in $verbs; do
    tag=$(grep -E "^\.B[IR]? (\"?$v( |\"|\$)|.*\" $v \")" <<< "$step_tags" | head -1 || true)
    [ -n "$tag" ] || { miss "devhost.ini.5: step '$v' has no .TP entry under STEPS"; continue; }
    args=$(grep -oE "step '$v': unknown argument 'zzz' \\(expected [^)]*" <<< "$said" | head -1 |
           sed -e 's/.*(expected //' -e 's/=//g' -e 's/,//g' || true)
    if [ -z "$args" ] && ! grep -q "step '$v': unknown argument 'zzz' (it takes no arguments)" <<< "$said"; then
        echo "note: step '$v' takes any key=value (check lists none of its arguments)"
    fi
    for a in $args; do
        grep -qF -- "$a=" <<< "$tag" || miss "devhost.ini.5: argument $a= is not in the entry of step '$v'"
        grep -qF -- "$a=" <<< "$argument_tags" || miss "devhost.ini.5: argument $a= has no .TP entry under Arguments"
    done
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "missing from the man pages in $man:"
    printf '  %s\n' "${missing[@]}" | sort -u
    exit 1
fi
echo "ok: commands $(echo $commands), [host] keys $(echo $host_keys), device keys $(echo $device_keys), [mqtt] keys $(echo $mqtt_keys)," \
     "steps $(echo $verbs), with their options and arguments"
