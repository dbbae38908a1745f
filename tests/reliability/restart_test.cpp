// The restart policy as a deployment meets it (issue 15, item 4): worker
// deaths of a class are counted in [host] state-dir across runs; after
// restart-budget of them within restart-window the class is latched failed,
// starts nothing (its devices fail at once, naming the reset command) while
// other classes run, until `devhost reset-failed` clears it.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

namespace {

using namespace devhost;

// A loop device whose worker crashes at its first transfer, beside a raw
// device on a file (another class, another worker) that must finish.
std::string config(const test::TempDir &dir, int budget)
{
    return "[host]\nallow-faults = true\nstate-dir = " + (dir / "state").string() +
           "\nrestart-budget = " + std::to_string(budget) +
           "\nrestart-window = 10m\n"
           "[device crashy]\nclass = loop\npath = loop:crashy\nfault = transfer:crash\n"
           "step = open\nstep = write \"x\"\nstep = close\n"
           "[device disk]\nclass = raw\npath = " + (dir / "disk.img").string() +
           "\nstep = open\nstep = read exactly=4\nstep = close\n";
}

int count(const std::string &text, const std::string &piece)
{
    int n = 0;
    for (size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1))
        n++;
    return n;
}

}  // namespace

TEST_CASE("a class whose worker dies restart-budget times is latched failed until reset-failed", "[isolation][restart]")
{
    test::TempDir dir;
    test::write_file(dir / "disk.img", std::string(4096, 'd'));
    const auto ini = dir / "r.ini";
    test::write_file(ini, config(dir, 3));
    for (int run = 1; run <= 3; run++) {
        auto r = test::run_devhost({"run", ini.string()});
        INFO("run " << run << "\n" << r.err);
        CHECK(r.exit_code == 1);
        CHECK(count(r.out, R"("device":"crashy")") == 2);  // open, then the write the crash lost
        CHECK(count(r.out, R"("status":"DEVHOST_E_HOST_FAILED")") == 1);
        CHECK(count(r.out, R"("device":"disk")") == 3);
        CHECK(count(r.out, R"("device":"disk","seq":2,"step":"read exactly=4")") == 1);
    }
    // The fourth run: loop is latched, starts nothing; raw still runs.
    auto r = test::run_devhost({"run", ini.string()});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(count(r.out, R"("device":"crashy","seq":1,"step":"open")") == 1);
    CHECK(count(r.out, "pipeline not started: class 'loop' failed: 3 worker deaths in 10 min") == 1);
    CHECK(count(r.out, "reset it with: devhost reset-failed " + ini.string() + " loop") == 1);
    CHECK(count(r.out, R"("device":"disk")") == 3);

    auto reset = test::run_devhost({"reset-failed", ini.string(), "loop"});
    INFO(reset.err);
    CHECK(reset.exit_code == 0);
    CHECK(reset.out.rfind("loop: reset (was failed: 3 worker deaths in 10 min", 0) == 0);
    r = test::run_devhost({"run", ini.string()});
    CHECK(count(r.out, "pipeline not started") == 0);
    CHECK(count(r.out, R"("status":"DEVHOST_E_HOST_FAILED")") == 1);  // it runs (and crashes) again
}
