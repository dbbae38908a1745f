// The bench's scale configs (bench/scale_config.hpp), made by the bench's own
// generator at their full size (512 devices, each 200 requests with
// repeat=; one device with 20480) on real ptys, pass `devhost check`, and
// stay a few hundred bytes (one templated section, instances=, on links to
// the ptys): a limit the full bench run would break (the config file's size,
// the steps a device may run) fails here, in CI, where only the smoke run is
// run. Check only: the 512-device run itself is the bench's.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "scale_config.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

using namespace devhost::test;

namespace {

// `count` pty masters, closed on scope exit; their slaves' paths.
struct PtyMasters {
    explicit PtyMasters(int count)
    {
        for (int i = 0; i < count; i++) {
            std::string slave;
            fds.push_back(devhost::test::open_pty_master(slave));
            slaves.push_back(slave);
        }
    }
    ~PtyMasters()
    {
        for (int fd : fds)
            ::close(fd);
    }
    PtyMasters(const PtyMasters &) = delete;
    PtyMasters &operator=(const PtyMasters &) = delete;
    std::vector<int> fds;
    std::vector<std::string> slaves;
};

// Checks the config of `devices` devices making `steps` requests each.
void check_scale_config(const TempDir &dir, int devices, int steps, const std::string &settle)
{
    INFO(devices << " devices, " << steps << " requests each");
    PtyMasters ptys(devices);
    const std::string paths = bench::link_ptys(dir / "ttys", ptys.slaves);
    const std::string text = bench::scale_config(paths, devices, steps, (dir / "records.jsonl").string(), settle);
    // One section whatever the number of devices and requests.
    CHECK(text.size() < 1024);
    write_file(dir / "scale.ini", text);
    auto r = run_devhost({"check", (dir / "scale.ini").string()}, {.timeout = 60s});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    const uint64_t runs = static_cast<uint64_t>(devices) * (3 + static_cast<uint64_t>(steps));
    CHECK(r.out == (dir / "scale.ini").string() + ": ok: " + std::to_string(devices) + " device(s)" +
                       (devices > 1 ? " (1 written, instances= counted)" : "") + ", " + std::to_string(runs) +
                       " step(s) (4 written, repeat= and instances= counted), 0 virtual device(s)\n");
}

}  // namespace

TEST_CASE("the bench's full-size scale configs pass devhost check", "[scale][bench]")
{
    // 512 ptys here, and devhost check's own descriptors.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 4096) {
        nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 4096);
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    TempDir dir;
    const bench::ScaleShape full = bench::scale_shape(false);
    REQUIRE(full.sizes.back() == 2048);  // the curve issue 18 asks for: 1, 16, 128, 512, 2048
    CHECK(full.steps_for(512) == 200);
    for (int n : full.sizes) {
        check_scale_config(dir, n, full.steps_for(n), full.settle);
        check_scale_config(dir, n, full.rss_steps, full.settle);
    }
}

TEST_CASE("the smoke run's scale configs have the full run's shape", "[scale][bench]")
{
    TempDir dir;
    const bench::ScaleShape smoke = bench::scale_shape(true), full = bench::scale_shape(false);
    CHECK(smoke.rss_steps == full.rss_steps);
    for (int n : smoke.sizes)
        check_scale_config(dir, n, smoke.steps_for(n), smoke.settle);
}
