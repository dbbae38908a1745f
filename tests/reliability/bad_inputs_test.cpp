// Runs the catalogue in tests/bad-inputs/: every bad config gives its exact
// error and exit code through the devhost binary, every bad step its exact
// message from the step parser.
#include "devhost_test.hpp"
#include "steps.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>

using namespace devhost;

namespace {

struct Expectation {
    std::string command = "check";
    int exit_code = -1;
    std::vector<std::string> texts;
};

Expectation read_header(const std::filesystem::path &file)
{
    Expectation e;
    std::ifstream in(file, std::ios::binary);
    std::string line;
    while (std::getline(in, line) && line.rfind("# ", 0) == 0) {
        if (line.rfind("# command: ", 0) == 0)
            e.command = line.substr(11);
        else if (line.rfind("# expect-exit: ", 0) == 0)
            e.exit_code = std::stoi(line.substr(15));
        else if (line.rfind("# expect: ", 0) == 0) {
            std::string t = line.substr(10);
            e.texts.push_back(t.front() == ':' ? file.string() + t : t);
        }
    }
    return e;
}

}  // namespace

TEST_CASE("every bad config in the catalogue gives its exact error and exit code", "[bad-inputs]")
{
    std::vector<std::filesystem::path> files;
    for (const auto &entry : std::filesystem::directory_iterator(test::source_dir() / "tests/bad-inputs/configs"))
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 20);
    for (const auto &file : files) {
        Expectation e = read_header(file);
        INFO(file.filename().string());
        REQUIRE(e.exit_code >= 0);
        REQUIRE_FALSE(e.texts.empty());
        auto r = test::run_devhost({e.command, file.string()}, {.timeout = std::chrono::seconds(30)});
        INFO("stderr: " << r.err);
        CHECK_FALSE(r.timed_out);
        CHECK(r.term_signal == 0);
        CHECK(r.exit_code == e.exit_code);
        for (const auto &t : e.texts)
            CHECK(r.err.find(t) != std::string::npos);
        // Every error is one line, prefixed, never a dump.
        for (const auto &l : test::lines(r.err))
            CHECK(l.rfind("devhost", 0) == 0);
    }
}

TEST_CASE("every bad step in the catalogue gives its exact message", "[bad-inputs]")
{
    std::ifstream in(test::source_dir() / "tests/bad-inputs/steps.tsv");
    std::string line;
    int count = 0;
    while (std::getline(in, line)) {
        auto tab = line.find('\t');
        REQUIRE(tab != std::string::npos);
        std::string step = line.substr(0, tab), expected = line.substr(tab + 1);
        std::string error;
        INFO(step);
        CHECK_FALSE(parse_step(step, error));
        CHECK(error == expected);
        count++;
    }
    CHECK(count >= 20);
}
