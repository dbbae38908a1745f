// The scale group's config and counts, in one place for the benchmark and
// for the test that checks the full-size config (tests/e2e/
// scale_config_test.cpp): the smoke run and the full run differ only in the
// counts, so a limit the full run's config breaks (the config file's size,
// steps or records per device) breaks the test in CI too.
//
// Each device: open, sleep SETTLE, one `request ... repeat=STEPS` line,
// close. The devices are one templated section (`[device d{n}]` with
// `instances = N`, devhost.ini(5)) on the links DIR/tty0 .. DIR/ttyN-1 to
// their ptys, and repeat= makes STEPS requests one line: the file is a few
// hundred bytes whatever N and STEPS are (512 devices x 200 requests, one
// section a device, made about 100 KB; one line a request, 9.7 MB, over
// the 4 MiB a config may have).
//
// Only the standard library: the test builds this file without the bench.
#pragma once

#include <filesystem>
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

// Makes `dir` (made afresh, mode 0755) hold the links tty0 .. ttyN-1 to
// `slaves`, in order; returns the devices' path for scale_config, the
// absolute DIR/tty{n}.
std::string link_ptys(const std::filesystem::path &dir, const std::vector<std::string> &slaves);

// A config of `devices` serial devices d0 .. dN-1 on `paths` (with {n}, as
// link_ptys returns it), each opening its pty, sleeping `settle`, making
// `steps` request/reply round trips with one repeat= step, and closing;
// records go to `records`.
std::string scale_config(const std::string &paths, int devices, int steps, const std::string &records,
                         const std::string &settle);

}  // namespace bench
