// Virtual devices declared in a config's [virtual NAME] sections: started as
// devhost-vdev child processes before the pipelines, and stopped after.
// A device whose path is virtual:NAME gets the path the peer announced.
// The peers of one run share a private directory (passed to them as
// DEVHOST_VDEV_DIR) for their endpoints, so
// concurrent runs using the same virtual names do not collide; it is removed
// when the peers stop.
//
// The directories are created with explicit modes whatever the umask
// (/run/devhost and /run/devhost/vdev 0755, the run's own 0700), checked
// (owner, mode) with every directory above them when they exist already
// (trusted_dir.hpp), and the run's directory is held open and used through
// its descriptor: before each peer starts the path must still name it, and
// it is emptied and removed through the descriptor, never re-resolved.
#pragma once

#include "config.hpp"
#include "trusted_dir.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace devhost {

class VirtualDevices {
public:
    // The devhost-vdev next to the running executable.
    static std::filesystem::path default_tool();

    explicit VirtualDevices(std::filesystem::path tool = default_tool());
    // Stops every peer still running.
    ~VirtualDevices();
    VirtualDevices(const VirtualDevices &) = delete;
    VirtualDevices &operator=(const VirtualDevices &) = delete;

    // Starts one peer and waits (up to `timeout_ms`) for its READY line.
    // Returns false with `error` set (one line) when it does not come up;
    // `usage_error` is set when the peer refused its options (exit code 2).
    bool start(const VirtualConfig &v, int timeout_ms, std::string &error, bool &usage_error);

    // The announced path for virtual:NAME, or "" if NAME was not started.
    std::string path_of(const std::string &name) const;

    // The private directory, or empty before the first start().
    const std::filesystem::path &dir() const { return dir_; }

    // SIGTERM to every peer, SIGKILL after `grace_ms`, reaped; then the
    // private directory is removed with what the peers left in it.
    void stop_all(int grace_ms = 3000);

private:
    struct Peer {
        std::string name;
        pid_t pid = -1;
        std::string path;
    };
    // Creates dir_ if it does not exist yet; false with `error` set if it fails.
    bool make_dir(std::string &error);
    // Removes the run's directory through the descriptors.
    void remove_dir();
    // Why the peer just started (the last of peers_, `pid`) sent no READY
    // line: it exited (then it is dropped from peers_; `usage_error` when
    // it exited 2), or said something else, or nothing in time.
    std::string why_not_ready(pid_t pid, bool got_line, const std::string &line, int timeout_ms, bool &usage_error);

    std::filesystem::path tool_;
    std::filesystem::path dir_;
    trusted_dir::Dir parent_;    // /run/devhost/vdev, or the temporary directory
    trusted_dir::Dir dir_fd_;    // the run's directory
    std::string dir_name_;       // its name in parent_
    std::vector<Peer> peers_;
};

}  // namespace devhost
