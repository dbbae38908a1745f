#include "control_wire.hpp"

#include "common/text.hpp"

#include <cstring>

namespace devhost::control {

std::string encode(const nlohmann::json &message)
{
    // Replacement instead of an exception: a record's text that is not
    // UTF-8 must not stop the reply that carries it.
    std::string out = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.push_back('\0');
    return out;
}

nlohmann::json error_reply(const std::string &error, const std::string &message)
{
    return {{"error", error}, {"parameters", {{"message", message}}}};
}

std::optional<std::string> FrameReader::next()
{
    if (too_long_)
        return std::nullopt;
    const void *nul = std::memchr(buffer_.data() + scanned_, '\0', buffer_.size() - scanned_);
    if (!nul) {
        scanned_ = buffer_.size();
        if (buffer_.size() > bound_) {
            too_long_ = true;
            buffer_.clear();
            scanned_ = 0;
        }
        return std::nullopt;
    }
    const size_t end = static_cast<const char *>(nul) - buffer_.data();
    if (end > bound_) {
        too_long_ = true;
        buffer_.clear();
        scanned_ = 0;
        return std::nullopt;
    }
    std::string frame = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    scanned_ = 0;
    return frame;
}

std::optional<nlohmann::json> parse_message(const std::string &frame, std::string &error)
{
    nlohmann::json j = nlohmann::json::parse(frame, nullptr, false);
    if (j.is_discarded()) {
        error = "not JSON: '" + text::excerpt(frame, 40) + "'";
        return std::nullopt;
    }
    if (!j.is_object()) {
        error = "not a JSON object: '" + text::excerpt(frame, 40) + "'";
        return std::nullopt;
    }
    return j;
}

}  // namespace devhost::control
