// The scale group's config and counts, in one place for the benchmark and
// for the test that checks the full-size config (tests/e2e/
// scale_config_test.cpp): the smoke run and the full run differ only in the
// counts, so a limit the full run's config breaks (the config file's size,
// steps or records per device) breaks the test in CI too.
//
// Each device: open, sleep SETTLE, one `request ... repeat=STEPS` line,
// close. repeat= keeps the file at a few hundred bytes a device whatever
// STEPS is (512 devices x 200 requests: about 100 KB, where one line per
// request made 9.7 MB, over the 4 MiB a config may have).
//
// Only the standard library: the test builds this file without the bench.
#pragma once

#include <string>
#include <vector>

namespace bench {

struct ScaleShape {
    std::vector<int> sizes;  // device counts, one run each
    int total = 0;           // requests a rate run makes, all devices together
    int min_steps = 0;       // requests a device makes at least
    int rss_steps = 10;      // requests a device makes in the RSS run
    std::string settle;      // each device's sleep after its open
    // Requests each device makes in the rate run with `devices` devices.
    int steps_for(int devices) const;
};

// The counts of the smoke run (what CI runs) or of the full run.
ScaleShape scale_shape(bool smoke);

// A config of one serial device per path in `slaves` (class serial), each
// opening its pty, sleeping `settle`, making `steps` request/reply round
// trips with one repeat= step, and closing; records go to `records`.
std::string scale_config(const std::vector<std::string> &slaves, int steps, const std::string &records,
                         const std::string &settle);

}  // namespace bench
