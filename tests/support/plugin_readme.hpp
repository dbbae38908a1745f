// A plugin's README against the plugin (the format is in plugins/README.md):
// Catch2 checks that its sections list exactly what the plugin declares.
#pragma once

#include "loader.hpp"

#include <set>
#include <string>

namespace devhost::test {

// "## Options" lists exactly the plugin's options, each with its type (INT
// range, ENUM choices) and default; "## Control codes" exactly its control
// codes (or says "None."). `where` names the README in messages.
void check_readme_declarations(const Plugin &plugin, const std::string &readme, const std::string &where);

// "## Info keys" lists every key in `reported` (what real devices reported),
// and each key it lists was reported or is in `unobservable` (keys no device
// in the test can report), which it must list too.
void check_readme_info_keys(const std::string &readme, const std::string &where,
                            const std::set<std::string> &reported, const std::set<std::string> &unobservable);

}  // namespace devhost::test
