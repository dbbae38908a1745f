#include "fleet_fixture.hpp"

namespace devhost::test {

std::unique_ptr<Child> start_serve(const TempDir &dir, const std::string &name, const std::string &ini)
{
    return std::make_unique<Child>(std::vector<std::string>{devhost_exe().string(), "serve", "--output",
                                                            (dir / (name + ".jsonl")).string(), "--socket",
                                                            (dir / (name + ".control")).string(),
                                                            (dir / ((ini.empty() ? name : ini) + ".ini")).string()},
                                   dir.path());
}

nlohmann::json payload(const Seen &s) { return nlohmann::json::parse(s.payload, nullptr, false); }

size_t count(const std::vector<Seen> &seen, const std::string &topic, const std::string &event)
{
    size_t n = 0;
    for (const auto &s : seen)
        n += s.topic == topic && (event.empty() || payload(s).value("event", "") == event);
    return n;
}

std::unique_ptr<Child> Fleet::serve(const std::string &config, const std::string &name)
{
    write_file(dir / (name + ".ini"), config);
    return start_serve(dir, name);
}

}  // namespace devhost::test
