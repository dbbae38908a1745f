// Which class serves a path: the plugins say, through the path_patterns of
// their descriptors (ABI 1.1), so that the host knows no class's paths.
// `devhost probe NAME` and a device without `class =` take their class from
// here.
//
// Every pattern is matched with fnmatch(3), without FNM_PATHNAME (a * also
// takes a /: one pattern covers any depth), against the resolved
// path; the pattern with the longest literal prefix (the part before its
// first * ? [ or \) wins. Two classes winning alike is an error naming both,
// which the user resolves with `class =` or `--class`.
#pragma once

#include "loader.hpp"

#include <optional>
#include <string>

namespace devhost {

// The literal prefix's length of a pattern: how specific it is.
size_t pattern_specificity(const std::string &pattern);

// The class for `resolved` (as configured: `configured`), or nullopt with
// `error` set: "no plugin's path patterns match ..." or, on a tie, a line
// naming both classes and their patterns.
std::optional<std::string> class_for_path(const PluginRegistry &registry, const std::string &configured,
                                          const std::string &resolved, std::string &error);

}  // namespace devhost
