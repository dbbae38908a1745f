// The serve group's config and counts, in one place for the benchmark and
// for the test that checks the full-size config (tests/serve/
// serve_bench_config_test.cpp): the smoke run and the full run differ only
// in the counts (devices, seconds), never in the shape of a device.
//
// Each device: a serial pty, `setup = open`, one 64-byte request/reply body
// (`request "..." until="\n"`), `teardown = close`, `run = every PERIOD`.
//
// Only the standard library: the test builds this file without the bench.
#pragma once

#include <string>
#include <vector>

namespace bench {

struct ServeShape {
    int devices = 0;           // served at once, one pty each
    double seconds = 0;        // the measured window
    std::string period;        // each device's `run = every PERIOD`
    double period_seconds = 0; // the same, in seconds (the rate asked)
};

// The counts of the smoke run (what CI runs) or of the full run.
ServeShape serve_shape(bool smoke);

// A serve config of one serial device per path in `slaves`, each running
// its body every `period`; records go to `records`.
std::string serve_config(const std::vector<std::string> &slaves, const std::string &period,
                         const std::string &records);

}  // namespace bench
