#include "serial_helpers.hpp"

#include <catch2/catch.hpp>

namespace serial_test {

using namespace devhost;
using namespace devhost::test;

std::shared_ptr<const Plugin> serial_plugin() { return loaded_plugin(plugin_dir() / "serial.so"); }

std::string start_vdev(std::unique_ptr<Child> &child, const TempDir &dir, const std::string &kind,
                       const std::vector<std::string> &args)
{
    std::string link = (dir / (kind + ".link")).string();
    std::vector<std::string> argv = {(bin_dir() / "devhost-vdev").string(), kind, "--name=" + kind, "--link=" + link};
    argv.insert(argv.end(), args.begin(), args.end());
    child = std::make_unique<Child>(argv, dir.path());
    INFO("vdev stderr: " << child->err());
    REQUIRE(child->wait_for_output("READY " + link, std::chrono::seconds(10)));
    return link;
}

}  // namespace serial_test
