// Serving a port from a program in this tree (devhost-filefilter, and
// devhost-vdev's filterport-echo): the port directory made and checked as the
// run directories are, the settings and callbacks put into a
// devhost_port_config, and the port owned so that every path closes it.
// Both servers set a port up this way; this is that, once.
//
// Internal to the tree (not installed), header-only, like trusted_dir.hpp;
// an OEM's server calls devhost/port.h directly.
#pragma once

#include <devhost/port.h>

#include "trusted_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace devhost::port_server {

// Owns a port: devhost_port_close (clients disconnected, waiting senders
// failed, the socket removed) when it goes.
struct Closer {
    void operator()(devhost_port *port) const { devhost_port_close(port); }
};
using Port = std::unique_ptr<devhost_port, Closer>;

// The port NAME in the directory DIR: DIR is created if missing (0755
// whatever the umask) and checked with every directory above it
// (trusted_dir.hpp; the port library checks it again at create). Throws
// std::runtime_error "--port-dir=DIR: why".
inline std::string path_in(const std::string &dir, const std::string &name)
{
    trusted_dir::Error err;
    if (!trusted_dir::open(std::filesystem::absolute(dir).string(), 0755, err))
        throw std::runtime_error("--port-dir=" + dir + ": " + err.message);
    return dir + "/" + name;
}

// What a server sets on its port (devhost_port_config, devhost_port_callbacks):
// each callback gets `user`; one left NULL does what port.h says.
struct Settings {
    std::string path;
    uint32_t max_connections = 1;
    uint32_t mode = 0600;
    std::vector<uint32_t> allowed_uids, allowed_gids;
    void *user = nullptr;
    decltype(devhost_port_callbacks::connect) connect = nullptr;
    decltype(devhost_port_callbacks::disconnect) disconnect = nullptr;
    decltype(devhost_port_callbacks::message) message = nullptr;
    decltype(devhost_port_callbacks::log) log = nullptr;
};

// Creates the port (devhost_port_create) and returns its owner. `handle` is
// set before the port's service thread starts, as devhost_port_create sets
// its *port, so callbacks may read the variable they know the port by.
// Throws std::runtime_error with the library's message when it cannot.
inline Port create(const Settings &s, devhost_port *&handle)
{
    devhost_port_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.user = s.user;
    cb.connect = s.connect;
    cb.disconnect = s.disconnect;
    cb.message = s.message;
    cb.log = s.log;
    devhost_port_config cfg{};
    cfg.struct_size = sizeof cfg;
    cfg.path = s.path.c_str();
    cfg.max_connections = s.max_connections;
    cfg.mode = s.mode;
    cfg.allowed_uids = s.allowed_uids.data();
    cfg.allowed_uid_count = static_cast<uint32_t>(s.allowed_uids.size());
    cfg.allowed_gids = s.allowed_gids.data();
    cfg.allowed_gid_count = static_cast<uint32_t>(s.allowed_gids.size());
    cfg.callbacks = &cb;
    devhost_error err{};
    err.struct_size = sizeof err;
    if (devhost_port_create(&cfg, &handle, &err) != DEVHOST_OK)
        throw std::runtime_error(err.message);
    return Port(handle);
}

// The same, for a server whose callbacks do not read the port.
inline Port create(const Settings &s)
{
    devhost_port *handle = nullptr;
    return create(s, handle);
}

}  // namespace devhost::port_server
