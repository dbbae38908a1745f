# Writes a "future" plugin.h: the current header as a later minor (1.2) would
# have it, one field appended at every "since v1.2: append here" mark (every
# struct larger, the hook table with a slot this host does not know) and the
# minor raised. The loader tests build abi_variant.c against it (variant
# `future`) to prove that today's host loads and drives a plugin built from a
# header newer than its own, as plugin.h promises.
#   cmake -DIN=<plugin.h> -DOUT=<dir>/devhost/plugin.h -P future_header.cmake
file(READ "${IN}" _header)
string(REPLACE "/* since v1.2: append here */"
  "uint64_t future_since_1_2; /* a field of a minor this host does not know */"
  _header "${_header}")
string(REGEX REPLACE "#define DEVHOST_ABI_VERSION_MINOR [0-9]+"
  "#define DEVHOST_ABI_VERSION_MINOR 2" _header "${_header}")
file(WRITE "${OUT}" "${_header}")
