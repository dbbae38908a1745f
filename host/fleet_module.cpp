#include "fleet_module.hpp"

#include "loader.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <mutex>

namespace devhost {

namespace {

// How check and serve both begin a refusal of the module's file.
constexpr const char *refused_prefix = "the fleet module (for [mqtt] and [metrics]) ";

}  // namespace

std::filesystem::path fleet_module_path(std::string &error)
{
    std::error_code ec;
    const std::filesystem::path exe = boost::dll::program_location(ec);
    if (ec || !exe.is_absolute()) {
        error = "cannot find devhost's own path to find its fleet module: " +
                (ec ? ec.message() : "not absolute: " + exe.string());
        return {};
    }
    return (exe.parent_path() / ".." / "lib" / "devhost" / "fleet.so").lexically_normal();
}

std::string fleet_module_refusal()
{
    std::string error;
    const std::filesystem::path file = fleet_module_path(error);
    if (file.empty())
        return error;
    return open_trusted_library(file, error) ? "" : refused_prefix + error;
}

const FleetModule *load_fleet_module(std::string &error)
{
    static std::mutex lock;
    // Loaded once and never unloaded: the publisher's and the metrics'
    // code and threads live in it until the process ends.
    [[maybe_unused]] static std::shared_ptr<boost::dll::shared_library> *library = nullptr;
    static const FleetModule *module = nullptr;
    std::lock_guard<std::mutex> guard(lock);
    if (module)
        return module;
    const std::filesystem::path file = fleet_module_path(error);
    if (file.empty())
        return nullptr;
    const std::string shown = display_path(file);
    auto loaded = load_trusted_library(file, error);
    if (!loaded) {
        error = refused_prefix + error;
        return nullptr;
    }
    if (!loaded->has(fleet_module_symbol)) {
        error = "the fleet module " + shown + " has no " + fleet_module_symbol + ": not devhost's fleet.so";
        return nullptr;
    }
    const FleetModule *m = loaded->get<const FleetModule *()>(fleet_module_symbol)();
    if (!m || !m->version || std::string(m->version) != DEVHOST_VERSION || m->layout != fleet_layout()) {
        error = "the fleet module " + shown + " is from another build (version " +
                (m && m->version ? std::string(m->version) : std::string("unknown")) + ", devhost " +
                DEVHOST_VERSION + "): reinstall devhost";
        return nullptr;
    }
    library = new std::shared_ptr<boost::dll::shared_library>(std::move(loaded));
    module = m;
    return module;
}

}  // namespace devhost
