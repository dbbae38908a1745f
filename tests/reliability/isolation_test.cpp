// Bad plugins never harm the supervisor (issue 15, item 5): a plugin whose
// library constructor or negotiate() exits, aborts, segfaults or loops
// forever is refused with one line naming its file and what happened (the
// exit status, the signal, or no answer within [host] describe-timeout),
// and the plugins next to it load and run; one that prints to stdout loads
// and runs, and its line never reaches stdout, where `devhost plugins`
// lists and `run -o -` writes records. The devhost binary itself always
// exits normally. The plugins are tests/bad-inputs/plugins/bad_plugin.c's
// ctor_* and negotiate_* variants, installed root-owned, mode 0755, in a
// plugin directory of the test's own next to a good plugin of the same
// class (the catalogue's none.so); the loop plugin comes from the built-in
// plugin directory.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

fs::path bad_plugin(const std::string &variant) { return binary_dir() / "tests/bad-plugins" / (variant + ".so"); }

// A copy of `from` at `to`, owned by root (or whoever runs the test), 0755.
void install(const fs::path &from, const fs::path &to)
{
    fs::copy_file(from, to);
    REQUIRE(::chmod(to.c_str(), 0755) == 0);
}

// A plugin directory of its own (0755, under a 0755 directory).
struct PluginDir {
    PluginDir()
    {
        REQUIRE(::chmod(base.path().c_str(), 0755) == 0);
        fs::create_directory(dir);
        REQUIRE(::chmod(dir.c_str(), 0755) == 0);
    }
    TempDir base;
    fs::path dir = base / "plugins";
};

// An abitest device (whichever plugin serves the class) and a loop device,
// with a describe timeout short enough for the loop variants.
std::string two_devices()
{
    return "[host]\ndescribe-timeout = 500ms\n"
           "[device a]\nclass = abitest\npath = abitest:a\nstep = open\nstep = write \"x\"\nstep = info\nstep = close\n"
           "[device l]\nclass = loop\npath = loop:l\nstep = open\nstep = write \"abc\"\n"
           "step = read exactly=3 expect=\"abc\"\nstep = close\n";
}

int count_lines(const std::string &text, const std::string &piece)
{
    int n = 0;
    for (const auto &line : lines(text))
        n += line.find(piece) != std::string::npos;
    return n;
}

// What each refused variant's refusal says.
std::string reason_of(const std::string &variant)
{
    const std::string what = variant.substr(variant.find('_') + 1);
    if (what == "exit")
        return "its worker exited with status 0 while loading it";
    if (what == "abort")
        return "its worker was killed by signal 6 (Aborted) while loading it";
    if (what == "segv")
        return "its worker was killed by signal 11 (Segmentation fault) while loading it";
    return "did not finish loading within 500 ms (a constructor or negotiation that does not return); its worker "
           "was killed";
}

// Under a sanitizer (ASAN_OPTIONS abort_on_error=1, as CI runs) a SIGSEGV
// is caught and turned into an abort: either signal is the crash.
bool refused_for(const std::string &line, const std::string &variant)
{
    if (line.find(reason_of(variant)) != std::string::npos)
        return true;
    return variant.find("segv") != std::string::npos &&
           line.find("its worker was killed by signal 6 (Aborted) while loading it") != std::string::npos;
}

// Every line of `out` is one JSON object (a record).
void check_records_only(const std::string &out, size_t expected)
{
    const auto all = lines(out);
    CHECK(all.size() == expected);
    for (const auto &line : all) {
        INFO(line);
        CHECK_NOTHROW(nlohmann::json::parse(line).is_object());
        CHECK(line.find("a line on stdout") == std::string::npos);
    }
}

}  // namespace

TEST_CASE("a constructor or negotiate that exits, aborts, segfaults or loops is refused in one line, the others "
          "load and run",
          "[isolation][loader]")
{
    for (const std::string variant :
         {"ctor_exit", "ctor_abort", "ctor_segv", "ctor_loop", "negotiate_exit", "negotiate_abort", "negotiate_segv",
          "negotiate_loop"}) {
        DYNAMIC_SECTION(variant)
        {
            PluginDir p;
            // The bad file first: the good one after it is described by a
            // worker of its own once the first died.
            const fs::path bad = p.dir / ("a-" + variant + ".so");
            install(bad_plugin(variant), bad);
            install(bad_plugin("none"), p.dir / "b-good.so");
            const fs::path config = p.base / "two.ini";
            write_file(config, two_devices());
            const std::vector<std::string> path{"--plugin-path", p.dir.string()};

            // check: the config is good (abitest and loop are served), the
            // bad file costs one log line.
            auto args = path;
            args.insert(args.end(), {"check", config.string()});
            auto r = run_devhost(args, {.timeout = 20s});
            INFO("check stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.term_signal == 0);
            CHECK(r.exit_code == 0);
            CHECK(r.out == config.string() + ": ok: 2 device(s), 8 step(s), 0 virtual device(s)\n");
            CHECK(count_lines(r.err, bad.string()) == 1);
            for (const auto &line : lines(r.err))
                if (line.find(bad.string()) != std::string::npos) {
                    CHECK(line.find("plugin " + bad.string() + " refused: ") != std::string::npos);
                    CHECK(refused_for(line, variant));
                }

            // run: both devices run, the records are whole JSON lines.
            args = path;
            args.insert(args.end(), {"run", "-o", "-", config.string()});
            const auto started = std::chrono::steady_clock::now();
            r = run_devhost(args, {.timeout = 20s});
            INFO("run stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.term_signal == 0);
            CHECK(r.exit_code == 0);
            CHECK(elapsed_ms(started) < 5000);
            check_records_only(r.out, 8);
            CHECK(count_lines(r.out, R"("status":"DEVHOST_OK")") == 8);
            CHECK(count_lines(r.out, R"("variant":"bad")") == 1);  // abitest's info: the good plugin's variant
            CHECK(count_lines(r.err, bad.string()) == 1);
        }
    }
}

TEST_CASE("devhost plugins lists a constructor or negotiate that exits, aborts or segfaults as refused, once, and "
          "the good plugin next to it",
          "[isolation][loader]")
{
    for (const std::string variant :
         {"ctor_exit", "ctor_abort", "ctor_segv", "negotiate_exit", "negotiate_abort", "negotiate_segv"}) {
        DYNAMIC_SECTION(variant)
        {
            PluginDir p;
            const fs::path bad = p.dir / ("a-" + variant + ".so");
            install(bad_plugin(variant), bad);
            install(bad_plugin("none"), p.dir / "b-good.so");

            auto r = run_devhost({"--plugin-path", p.dir.string(), "plugins"}, {.timeout = 20s});
            INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.term_signal == 0);
            CHECK(r.exit_code == 0);
            CHECK(count_lines(r.out, bad.string()) == 1);
            for (const auto &line : lines(r.out))
                if (line.find(bad.string()) != std::string::npos) {
                    CHECK(line.rfind("refused: " + bad.string() + ": ", 0) == 0);
                    CHECK(refused_for(line, variant));
                }
            CHECK(count_lines(r.err, "plugin " + bad.string() + " refused: ") == 1);
            CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + (p.dir / "b-good.so").string() + "\n") !=
                  std::string::npos);
            CHECK(r.out.find("\nloop: loop") != std::string::npos);

            r = run_devhost({"--plugin-path", p.dir.string(), "plugins", "--json"}, {.timeout = 20s});
            INFO("--json stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.exit_code == 0);
            nlohmann::json listed;
            REQUIRE_NOTHROW(listed = nlohmann::json::parse(r.out));
            const std::string entry = "{\"file\":\"" + bad.string() + "\",\"reason\":\"";
            const size_t at = r.out.find(entry);
            CHECK(at != std::string::npos);
            CHECK(r.out.find("\"" + bad.string() + "\"", at + entry.size()) == std::string::npos);
            CHECK(refused_for(listed.dump(), variant));
        }
    }
}

TEST_CASE("devhost plugins refuses a constructor or negotiate that never returns after the describe timeout, and "
          "lists the rest",
          "[isolation][loader]")
{
    // `devhost plugins` reads no config: the default describe timeout
    // (5 s) applies, so both loop variants share one directory and the
    // text and JSON listings run side by side.
    PluginDir p;
    const fs::path ctor = p.dir / "a-ctor_loop.so", negotiate = p.dir / "b-negotiate_loop.so";
    install(bad_plugin("ctor_loop"), ctor);
    install(bad_plugin("negotiate_loop"), negotiate);
    install(bad_plugin("none"), p.dir / "c-good.so");
    const auto started = std::chrono::steady_clock::now();
    Child text({devhost_exe().string(), "--plugin-path", p.dir.string(), "plugins"}, p.base.path());
    Child json({devhost_exe().string(), "--plugin-path", p.dir.string(), "plugins", "--json"}, p.base.path());
    auto r = text.wait(25s);
    auto j = json.wait(25s);
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE_FALSE(j.timed_out);
    CHECK(elapsed_ms(started) < 20000);
    CHECK(r.exit_code == 0);
    const std::string reason = "did not finish loading within 5000 ms (a constructor or negotiation that does not "
                               "return); its worker was killed";
    for (const auto &file : {ctor, negotiate}) {
        CHECK(count_lines(r.out, file.string()) == 1);
        CHECK(count_lines(r.out, "refused: " + file.string() + ": " + reason) == 1);
        CHECK(count_lines(r.err, "plugin " + file.string() + " refused: " + reason) == 1);
        CHECK(j.out.find("{\"file\":\"" + file.string() + "\",\"reason\":\"" + reason + "\"}") != std::string::npos);
    }
    CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + (p.dir / "c-good.so").string() + "\n") !=
          std::string::npos);
    CHECK(j.exit_code == 0);
    CHECK_NOTHROW(nlohmann::json::parse(j.out));
}

TEST_CASE("a constructor or negotiate that prints to stdout loads and runs, and its line never reaches stdout",
          "[isolation][loader]")
{
    for (const std::string variant : {"ctor_print", "negotiate_print"}) {
        DYNAMIC_SECTION(variant)
        {
            PluginDir p;
            const fs::path file = p.dir / (variant + ".so");
            install(bad_plugin(variant), file);
            const std::string where = variant == "ctor_print" ? "constructor" : "negotiate";
            const std::string printed = "abitest-bad " + where + ": a line on stdout";

            auto r = run_devhost({"--plugin-path", p.dir.string(), "plugins"}, {.timeout = 20s});
            INFO("plugins stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.exit_code == 0);
            CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + file.string() + "\n") != std::string::npos);
            CHECK(r.out.find(printed) == std::string::npos);
            CHECK(count_lines(r.out, "refused: ") == 0);
            CHECK(count_lines(r.err, printed) == 1);  // its worker's stdout is devhost's stderr

            r = run_devhost({"--plugin-path", p.dir.string(), "plugins", "--json"}, {.timeout = 20s});
            INFO("plugins --json stdout:\n" << r.out);
            CHECK(r.exit_code == 0);
            CHECK_NOTHROW(nlohmann::json::parse(r.out));
            CHECK(r.out.find(printed) == std::string::npos);

            const fs::path config = p.base / "two.ini";
            write_file(config, two_devices());
            r = run_devhost({"--plugin-path", p.dir.string(), "check", config.string()}, {.timeout = 20s});
            INFO("check stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.exit_code == 0);
            CHECK(r.out == config.string() + ": ok: 2 device(s), 8 step(s), 0 virtual device(s)\n");

            r = run_devhost({"--plugin-path", p.dir.string(), "run", "-o", "-", config.string()}, {.timeout = 20s});
            INFO("run stdout:\n" << r.out << "\nstderr:\n" << r.err);
            CHECK(r.exit_code == 0);
            check_records_only(r.out, 8);
            CHECK(count_lines(r.out, R"("status":"DEVHOST_OK")") == 8);
            // Loaded by the run's worker (and described again unless the
            // describe cache kept what `plugins` described above): on stderr.
            const int times = count_lines(r.err, printed);
            CHECK((times == 1 || times == 2));
        }
    }
}
