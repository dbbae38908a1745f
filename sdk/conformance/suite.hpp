// devhost-conformance: the contract tests of plugin.h's numbered MUSTs, run
// on one plugin loaded through the host's own loader. Each test runs in a
// forked child (runner.hpp); this header is what a test sees.
#pragma once

#include "loader.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace devhost::conformance {

enum class Verdict { Pass, Fail, Skip };

struct Result {
    Verdict verdict = Verdict::Pass;
    std::string reason;              // why it failed or was skipped
    std::vector<std::string> notes;  // diagnostics, one line each
    static Result pass() { return {}; }
    static Result fail(std::string why) { return {Verdict::Fail, std::move(why), {}}; }
    static Result skip(std::string why) { return {Verdict::Skip, std::move(why), {}}; }
};

// What every test is given.
struct Context {
    std::shared_ptr<const Plugin> plugin;
    std::vector<std::string> devices;           // --device, in order (or the built-in defaults)
    std::map<std::string, std::string> options;  // --option NAME=VALUE, for every open
    bool loopback = false;                        // a device reads back what it was written
    std::string unplug;                           // --unplug: a shell command that removes device 0
    // The i-th device path a test may open at once with the others; nullopt
    // when there is none (no --device, or one path and the class cannot
    // open it twice).
    std::optional<std::string> device(size_t i) const;
    // "no device: give --device PATH" and the like, for a skip.
    std::string why_no_device(size_t count) const;
};

struct Test {
    const char *name;     // stable id, printed in TAP
    const char *must;     // "MUST-5": the clause of plugin.h it checks
    const char *summary;  // one line, for --list
    std::function<Result(const Context &)> run;
};

// Every test, in the order they run.
const std::vector<Test> &all_tests();

// Each test group registers its tests (contract_*.cpp).
void add_static_tests(std::vector<Test> &tests);
void add_device_tests(std::vector<Test> &tests);
void add_timing_tests(std::vector<Test> &tests);

}  // namespace devhost::conformance
