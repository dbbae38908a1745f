// A plugin's description as one JSON object: what a worker that loaded the
// plugin tells the supervisor, which never loads plugin code itself (README,
// "Process model"). Everything the host knows of a plugin besides its hooks'
// code: names, version, ABI, flags, ops, options, controls, path patterns
// and types, which hooks it has, and the file it came from (path, device
// and inode). The supervisor's Plugin made from it is not loaded(): its
// hooks are NULL.
#pragma once

#include "loader.hpp"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace devhost {

struct PluginCodec {
    static nlohmann::json to_json(const Plugin &plugin);
    // nullptr with `error` set when the object is not a description this
    // host wrote (a worker speaks the host's own format: a mismatch is a
    // bug or a worker that is not ours).
    static std::shared_ptr<Plugin> from_json(const nlohmann::json &json, std::string &error);
};

}  // namespace devhost
