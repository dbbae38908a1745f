// The bench's serve config (bench/serve_config.hpp), made by the bench's own
// generator at its full size (128 serial devices on real ptys, a body every
// 10 ms), passes `devhost check`: a limit the full bench run would break
// fails here, in CI, where only the smoke run is run. Check only: serving
// 128 devices for 10 s is the bench's.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "serve_config.hpp"

#include <catch2/catch.hpp>

#include <devhost/unique_fd.hpp>

using namespace devhost::test;

namespace {

// Checks the config of `devices` devices, each on a pty of its own.
void check_serve_config(const TempDir &dir, int devices, const std::string &period)
{
    INFO(devices << " devices every " << period);
    std::vector<devhost::UniqueFd> masters;
    std::vector<std::string> slaves;
    for (int i = 0; i < devices; i++) {
        std::string slave;
        masters.emplace_back(open_pty_master(slave));
        slaves.push_back(slave);
    }
    const std::string text = bench::serve_config(slaves, period, (dir / "records.jsonl").string());
    CHECK(text.find("run = every " + period + "\n") != std::string::npos);
    write_file(dir / "serve.ini", text);
    auto r = run_devhost({"check", (dir / "serve.ini").string()}, {.timeout = 60s});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    // Per device: setup open, the request body, teardown close.
    CHECK(r.out == (dir / "serve.ini").string() + ": ok: " + std::to_string(devices) + " device(s), " +
                       std::to_string(3 * devices) + " step(s), 0 virtual device(s)\n");
}

}  // namespace

TEST_CASE("the bench's full-size serve config passes devhost check", "[serve][bench]")
{
    TempDir dir;
    const bench::ServeShape full = bench::serve_shape(false);
    CHECK(full.devices == 128);
    CHECK(full.period == "10ms");
    CHECK(full.period_seconds == 0.010);
    CHECK(full.seconds == 10);
    check_serve_config(dir, full.devices, full.period);
}

TEST_CASE("the smoke run's serve config has the full run's shape, fewer devices for less time", "[serve][bench]")
{
    TempDir dir;
    const bench::ServeShape smoke = bench::serve_shape(true), full = bench::serve_shape(false);
    CHECK(smoke.period == full.period);
    CHECK(smoke.period_seconds == full.period_seconds);
    CHECK(smoke.devices < full.devices);
    CHECK(smoke.seconds < full.seconds);
    check_serve_config(dir, smoke.devices, smoke.period);
}
