// Runs one test in a forked child with a deadline: a test that crashes or
// hangs fails alone ("killed by SIGSEGV", "did not finish within 30 s"),
// the others still run. The child's stdout goes to stderr, so nothing a
// plugin prints can break the TAP stream.
#pragma once

#include "suite.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace devhost::conformance {

Result run_in_child(const Test &test, const Context &ctx, int timeout_s);

// In a test: runs `body` on a thread and waits up to `limit_ms` for it; when
// it does not return by then, the child reports a failure with `what`
// ("transfer (read) did not return within 2000 ms of its cancel handle
// firing") and exits at once (the thread is stuck in the plugin).
void bounded(int64_t limit_ms, const std::string &what, const std::function<void()> &body);

}  // namespace devhost::conformance
