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

std::unique_ptr<Child> Fleet::serve(const std::string &config, const std::string &name)
{
    write_file(dir / (name + ".ini"), config);
    return start_serve(dir, name);
}

}  // namespace devhost::test
