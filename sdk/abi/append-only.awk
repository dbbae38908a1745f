# What the append-only promise lets abidiff report and still pass.
#
# Input: the report of
#   abidiff --no-default-suppression --harmless --no-show-locs BASELINE.abi ANCHOR.so
# (no suppression, harmless changes shown, the default tree of changes under
# each anchor function). Output: one line per change that is not an
# addition; exit 1 if there is one, 0 if every line is allowed. A line this
# file does not recognise is such a change: the check is fail-closed, and a
# new kind of abidiff line fails until someone decides what it means here.
#
# Allowed, and nothing else:
#   - the summaries, with 0 functions and 0 variables removed, and no
#     variable changed or added;
#   - "[A]" an added anchor function (devhost_abi_anchor_*: a new type or
#     library function with its anchor line);
#   - "[C]" an anchor function with INDIRECT sub-type changes, and the path
#     down to what changed (parameter, pointed-to type, typedef, member:
#     "type of 'M' changed"), or "... changed, as reported earlier";
#   - in a struct: "type size changed from A to B" with B > A, and data
#     member insertions each at an offset >= A (after the end of the
#     baseline's struct, so a reader's struct_size check tells it apart);
#     "type size hasn't changed"; "N data member change(s):" whose entries
#     are themselves only paths to allowed changes;
#   - in an enum: "type size hasn't changed" and enumerator insertions.
# So a member inserted, removed, renamed, moved, resized or retyped (a
# signedness, width, qualifier or typedef change, even one abidiff calls
# harmless or compatible), a member appended into the struct's old tail
# padding, a changed function signature, an enumerator removed or
# renumbered, a removed function: each prints a line and fails.
#
# Run by scripts/abi-check.sh as: awk -v label=LABEL -f append-only.awk REPORT

function fail(why) { fail_in(indent, why) }

# A change that is not allowed, named by the lines enclosing indent `depth`.
function fail_in(depth, why) {
    printf "abi-check: %s: %s%s\n", label, where(depth), why
    bad = 1
}

# "struct S, member M: " from the lines enclosing indent `depth`, or
# "anchor of F: " for a change outside any struct (F's signature).
function where(depth,    i, s, m) {
    s = ""; m = ""
    for (i = 0; i < depth; i++) {
        if (!(i in kind)) continue
        if (kind[i] == "function") s = "anchor of " name[i]
        if (kind[i] == "struct" || kind[i] == "enum") { s = kind[i] " " name[i]; m = "" }
        if (kind[i] == "member") m = name[i]
    }
    if (s == "") return ""
    return s (m == "" ? "" : ", member " m) ": "
}

# The text between the first pair of single quotes of `s`.
function quoted(s) {
    sub(/^[^']*'/, "", s)
    sub(/'.*$/, "", s)
    return s
}

# The member's name, last word of a declaration such as
# "typedef devhost_status (devhost_device*, devhost_error*)* close".
function member_name(decl) {
    sub(/^.* /, "", decl)
    return decl
}

# The struct or enum whose lines end here: a size grown with nothing appended
# is a change no line explains (alignment, a member grown in place).
function close_context(i) {
    if (kind[i] == "struct" && (i in grown) && grown[i] >= 0 && !(i in appended))
        fail_in(i + 1, "size grew from " grown[i] " bits with no member appended")
    delete kind[i]; delete name[i]; delete grown[i]; delete appended[i]; delete floor[i]
}

# Forget the enclosing lines at `indent` and deeper: a new sibling starts.
function pop_to(indent,    i) {
    for (i = deepest; i >= indent; i--)
        if (i in kind) close_context(i)
}

# The nearest enclosing line's indent, or -1.
function parent(    i) {
    for (i = indent - 1; i >= 0; i--)
        if (i in kind) return i
    return -1
}

BEGIN { bad = 0; deepest = 0; section = "" }

/^[ ]*$/ { next }

{
    line = $0
    match(line, /^ */)
    indent = RLENGTH
    text = substr(line, indent + 1)
    pop_to(indent)
    if (indent > deepest) deepest = indent
    p = parent()
    pk = (p >= 0) ? kind[p] : ""
}

# The summaries and section headers, at the left margin.
indent == 0 {
    if (text ~ /^Functions changes summary: 0 Removed, [0-9]+ Changed, [0-9]+ Added functions?$/) next
    if (text ~ /^Variables changes summary: 0 Removed, 0 Changed, 0 Added variables?$/) next
    if (text ~ /^[0-9]+ Added functions?:$/) { section = "added"; next }
    if (text ~ /^[0-9]+ functions? with some indirect sub-type changes?:$/) { section = "changed"; next }
    section = ""
    fail("not an addition: " text)
    next
}

section == "added" && indent == 2 &&
text ~ /^\[A\] 'function void devhost_abi_anchor_[A-Za-z0-9_]+\(.*\)' +\{devhost_abi_anchor_[A-Za-z0-9_]+\}$/ { next }

section == "changed" && indent == 2 &&
text ~ /^\[C\] 'function void devhost_abi_anchor_[A-Za-z0-9_]+\(.*\)' has some indirect sub-type changes:$/ {
    kind[indent] = "function"; name[indent] = text
    sub(/^[^(]* devhost_abi_anchor_/, "", name[indent]); sub(/\(.*$/, "", name[indent])
    next
}

# Inside a changed function: the path down to a changed type.
section == "changed" && p >= 0 {
    if (text ~ /^(pointed to type|unqualified underlying type|underlying type|type of) '.*' changed, as reported earlier$/) next
    if (text ~ /^parameter [0-9]+ of type '.*' has sub-type changes:$/ ||
        text ~ /^in (pointed to|unqualified underlying) type '.*':$/) {
        kind[indent] = "path"; next
    }
    if (text ~ /^underlying type 'struct [A-Za-z0-9_]+' changed:$/) {
        kind[indent] = "struct"; name[indent] = quoted(text); sub(/^struct /, "", name[indent]); next
    }
    if (text ~ /^underlying type 'enum [A-Za-z0-9_]+' changed:$/) {
        kind[indent] = "enum"; name[indent] = quoted(text); sub(/^enum /, "", name[indent]); next
    }
    if (text ~ /^underlying type '.*' changed:$/) { kind[indent] = "path"; next }
    if (pk == "struct" && text ~ /^type size changed from [0-9]+ to [0-9]+ \(in bits\)$/) {
        split(text, w, " ")
        if (w[7] + 0 <= w[5] + 0) { fail("size shrank: " text); next }
        grown[p] = w[5] + 0
        next
    }
    if (pk == "struct" && text == "type size hasn't changed") { grown[p] = -1; next }
    if (pk == "enum" && text == "type size hasn't changed") next
    if (pk == "struct" && text ~ /^[0-9]+ data member insertions?:$/) {
        if (!(p in grown)) { fail("members inserted, the size not stated: " text); next }
        kind[indent] = "insertions"; floor[indent] = grown[p]; appended[p] = 1; next
    }
    if (pk == "insertions" && text ~ /^'.*', at offset [0-9]+ \(in bits\)$/) {
        offset = text; sub(/^.*, at offset /, "", offset); sub(/ .*$/, "", offset)
        if (floor[p] < 0)
            fail("member '" quoted(text) "' inserted at offset " offset " bits, the size unchanged: " \
                 "in the baseline's tail padding, which an old writer's struct_size already covers")
        else if (offset + 0 < floor[p])
            fail("member '" quoted(text) "' inserted at offset " offset " bits, inside the baseline's " \
                 floor[p] " bits: only members after the end of the struct may be added")
        next
    }
    if (pk == "struct" && text ~ /^[0-9]+ data member changes?:$/) { kind[indent] = "changes"; next }
    if (pk == "changes" && text ~ /^type of '.*' changed:$/) {
        kind[indent] = "member"; name[indent] = member_name(quoted(text)); next
    }
    if (pk == "enum" && text ~ /^[0-9]+ enumerator insertions?:$/) { kind[indent] = "enumerators"; next }
    if (pk == "enumerators" && text ~ /^'.*' value '-?[0-9]+'$/) next
}

{ fail("not an addition: " text) }

END {
    pop_to(0)
    exit bad
}
