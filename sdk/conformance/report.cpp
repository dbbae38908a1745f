// TAP, JUnit and JSON writers.
#include "report.hpp"

#include <nlohmann/json.hpp>

namespace devhost::conformance {

namespace {

const char *verdict_name(Verdict v) { return v == Verdict::Pass ? "pass" : v == Verdict::Fail ? "fail" : "skip"; }

// One line, whatever the text held (TAP and XML attributes are line-based).
std::string flat(const std::string &s)
{
    std::string out;
    for (char c : s)
        out += (c == '\n' || c == '\r') ? ' ' : c;
    return out;
}

std::string xml(const std::string &s)
{
    std::string out;
    for (unsigned char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default: out += (c < 0x20 && c != '\t') ? ' ' : static_cast<char>(c);
        }
    }
    return out;
}

}  // namespace

std::string plugin_line(const Plugin &p)
{
    return p.file().string() + ": class " + p.device_class() + ", plugin " + p.name() + " " + p.version() +
           ", ABI " + format_version(p.abi_version());
}

void tap_header(std::ostream &out, const Plugin &plugin, size_t count, const std::vector<std::string> &notes)
{
    out << "TAP version 13\n# devhost-conformance " << DEVHOST_VERSION << ": " << flat(plugin_line(plugin)) << "\n";
    for (const auto &n : notes)
        out << "# " << flat(n) << "\n";
    out << "1.." << count << "\n" << std::flush;
}

void tap_line(std::ostream &out, size_t number, const Outcome &o)
{
    const Result &r = o.result;
    out << (r.verdict == Verdict::Fail ? "not ok " : "ok ") << number << " - " << o.test->name << " ("
        << o.test->must << ")";
    if (r.verdict == Verdict::Skip)
        out << " # SKIP " << flat(r.reason);
    out << "\n";
    if (r.verdict == Verdict::Fail)
        out << "#   " << flat(r.reason) << "\n";
    for (const auto &n : r.notes)
        out << "#   " << flat(n) << "\n";
    out << std::flush;
}

void write_junit(std::ostream &out, const Plugin &plugin, const std::vector<Outcome> &outcomes)
{
    size_t failures = 0, skipped = 0;
    for (const auto &o : outcomes) {
        failures += o.result.verdict == Verdict::Fail;
        skipped += o.result.verdict == Verdict::Skip;
    }
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"devhost-conformance."
        << xml(plugin.device_class()) << "\" tests=\"" << outcomes.size() << "\" failures=\"" << failures
        << "\" skipped=\"" << skipped << "\" errors=\"0\">\n";
    for (const auto &o : outcomes) {
        out << "    <testcase classname=\"devhost-conformance." << xml(plugin.device_class()) << "\" name=\""
            << o.test->name << "\" time=\"" << o.elapsed_ms / 1000.0 << "\">\n";
        if (o.result.verdict == Verdict::Fail)
            out << "      <failure message=\"" << xml(o.result.reason) << "\">" << o.test->must << "</failure>\n";
        else if (o.result.verdict == Verdict::Skip)
            out << "      <skipped message=\"" << xml(o.result.reason) << "\"/>\n";
        out << "      <system-out>";
        for (const auto &n : o.result.notes)
            out << xml(n) << "\n";
        out << "</system-out>\n    </testcase>\n";
    }
    out << "  </testsuite>\n</testsuites>\n";
}

void write_json(std::ostream &out, const Plugin &plugin, const std::vector<Outcome> &outcomes)
{
    nlohmann::json tests = nlohmann::json::array();
    std::map<std::string, int> totals{{"pass", 0}, {"fail", 0}, {"skip", 0}};
    for (size_t i = 0; i < outcomes.size(); i++) {
        const Outcome &o = outcomes[i];
        totals[verdict_name(o.result.verdict)]++;
        tests.push_back({{"number", i + 1},
                         {"name", o.test->name},
                         {"must", o.test->must},
                         {"result", verdict_name(o.result.verdict)},
                         {"reason", o.result.reason},
                         {"notes", o.result.notes},
                         {"ms", o.elapsed_ms}});
    }
    nlohmann::json doc = {{"plugin", plugin.file().string()}, {"class", plugin.device_class()},
                          {"name", plugin.name()},            {"version", plugin.version()},
                          {"abi", format_version(plugin.abi_version())},
                          {"tests", tests},                   {"totals", totals}};
    out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace devhost::conformance
