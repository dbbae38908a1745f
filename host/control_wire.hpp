// The control socket's wire format, shared by the server (control_server.hpp)
// and the clients (control_client.hpp): varlink's framing, JSON objects each
// ended by a NUL byte on a Unix stream socket.
//
//   call:  {"method": "devhost.List", "parameters": {...}}
//   reply: {"parameters": {...}}
//          {"error": "devhost.NoSuchDevice", "parameters": {"message": "..."}}
//   devhost.Monitor's replies carry "continues": true, one per event, until
//   the connection closes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace devhost::control {

inline constexpr const char *default_socket = "/run/devhost/control";

// The longest call (without its NUL) the server accepts, and the longest
// reply a client accepts (a device's records can be long).
inline constexpr size_t max_frame = 64 * 1024;
inline constexpr size_t max_reply = 16 * 1024 * 1024;

// The methods.
inline constexpr const char *method_list = "devhost.List";
inline constexpr const char *method_call = "devhost.Call";
inline constexpr const char *method_reset = "devhost.Reset";
inline constexpr const char *method_reload = "devhost.Reload";
inline constexpr const char *method_monitor = "devhost.Monitor";

// The errors a reply may name; each carries {"message": "..."}.
namespace errors {
inline constexpr const char *invalid_frame = "devhost.InvalidFrame";          // not JSON, not an object, too long
inline constexpr const char *method_not_found = "devhost.MethodNotFound";
inline constexpr const char *invalid_parameter = "devhost.InvalidParameter";  // missing or of the wrong type
inline constexpr const char *permission_denied = "devhost.PermissionDenied";
inline constexpr const char *too_many_clients = "devhost.TooManyClients";
inline constexpr const char *no_such_device = "devhost.NoSuchDevice";
inline constexpr const char *body_failed = "devhost.BodyFailed";
inline constexpr const char *reset_failed = "devhost.ResetFailed";
inline constexpr const char *reload_failed = "devhost.ReloadFailed";
}  // namespace errors

// One message as sent: its JSON and the NUL that ends it.
std::string encode(const nlohmann::json &message);

// An error reply.
nlohmann::json error_reply(const std::string &error, const std::string &message);

// Splits what a stream delivers into frames. Bytes are appended with
// feed(); next() returns each complete frame in turn (without its NUL).
// A frame longer than the bound is an error (too_long() from then on: the
// stream cannot be resynchronised, the connection must be closed); the
// buffer never holds more than the bound + one read.
class FrameReader {
public:
    explicit FrameReader(size_t bound = max_frame) : bound_(bound) {}
    void feed(const char *data, size_t size) { buffer_.append(data, size); }
    std::optional<std::string> next();
    bool too_long() const { return too_long_; }
    size_t bound() const { return bound_; }
    size_t buffered() const { return buffer_.size(); }

private:
    size_t bound_;
    std::string buffer_;
    size_t scanned_ = 0;  // bytes of buffer_ known to hold no NUL
    bool too_long_ = false;
};

// A frame parsed as a message: the JSON object, or why it is not one
// ("not JSON: ...", "not a JSON object").
std::optional<nlohmann::json> parse_message(const std::string &frame, std::string &error);

}  // namespace devhost::control
