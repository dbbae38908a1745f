// Which class serves a path: the plugins say, through the path_patterns and
// path_types of their descriptors (ABI 1.1), so that the host knows no
// class's paths. `devhost probe NAME` and a device without `class =` take
// their class from here, after host/names.cpp has turned a Windows name
// into a path.
//
// Every pattern is matched with fnmatch(3) against the resolved path,
// without FNM_PATHNAME ('*' also matches '/': "vport:*" takes any depth);
// the pattern with the longest literal prefix (the part before its first
// * ? [ or \) wins. When no pattern matches, the path is stat(2)ed and the
// one plugin whose path_types has the file's kind wins (a disk image
// anywhere, a socket in any directory); a path that does not exist has no
// kind. This is a guess for the user, not a security decision: the plugin
// checks what it opens. Two classes winning alike, by pattern or by kind,
// is an error naming both, which the user resolves with `class =` or
// `--class`.
#pragma once

#include "loader.hpp"

#include <optional>
#include <string>

namespace devhost {

// The literal prefix's length of a pattern: how specific it is.
size_t pattern_specificity(const std::string &pattern);

// The class for `resolved` (as configured: `configured`), or nullopt with
// `error` set: "no plugin's path patterns match ..." (with the file's kind
// when it exists), or, on a tie, a line naming both classes and their
// patterns or the kind they both take.
std::optional<std::string> class_for_path(const PluginRegistry &registry, const std::string &configured,
                                          const std::string &resolved, std::string &error);

}  // namespace devhost
