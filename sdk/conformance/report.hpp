// The results as TAP version 13 (stdout), JUnit XML (--junit FILE) and JSON
// (--json, on stdout instead of TAP).
#pragma once

#include "suite.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace devhost::conformance {

struct Outcome {
    const Test *test;
    Result result;
    int64_t elapsed_ms = 0;
};

// The line that heads a run, naming the plugin.
std::string plugin_line(const Plugin &plugin);

// TAP: one line per test as it ends, so a reader sees progress.
void tap_header(std::ostream &out, const Plugin &plugin, size_t count, const std::vector<std::string> &notes);
void tap_line(std::ostream &out, size_t number, const Outcome &o);

void write_junit(std::ostream &out, const Plugin &plugin, const std::vector<Outcome> &outcomes);
void write_json(std::ostream &out, const Plugin &plugin, const std::vector<Outcome> &outcomes);

}  // namespace devhost::conformance
