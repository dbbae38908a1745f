#include "faults.hpp"

#include "text.hpp"

#include <cctype>

namespace devhost {

std::optional<devhost_status> parse_status(std::string_view name)
{
    std::string upper;
    for (char c : name)
        upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    for (devhost_status s = 0; s >= DEVHOST_STATUS_LAST; s--) {
        std::string full = devhost_status_name(s);
        if (upper == full || "DEVHOST_" + upper == full || "DEVHOST_E_" + upper == full)
            return s;
    }
    return std::nullopt;
}

std::optional<Fault> parse_fault(std::string_view text_in, std::string &error)
{
    static const std::pair<const char *, Hook> hooks[] = {
        {"open", Hook::Open},     {"connect", Hook::Connect},       {"lock", Hook::Lock},
        {"transfer", Hook::Transfer}, {"unlock", Hook::Unlock}, {"disconnect", Hook::Disconnect},
        {"close", Hook::Close},   {"info", Hook::Info},
    };
    Fault f;
    std::string_view t = text::trim(text_in);
    f.text = std::string(t);
    auto colon = t.find(':');
    if (colon == std::string_view::npos) {
        error = "fault '" + text::excerpt(f.text) + "': expected HOOK[@N]:ACTION";
        return std::nullopt;
    }
    std::string_view hook = t.substr(0, colon), action = t.substr(colon + 1);
    if (auto hash = hook.find('@'); hash != std::string_view::npos) {
        auto n = text::parse_int(hook.substr(hash + 1));
        if (!n || *n < 1 || *n > 1000000000) {
            error = "fault '" + text::excerpt(f.text) + "': @N must be a call number from 1";
            return std::nullopt;
        }
        f.call = static_cast<uint32_t>(*n);
        hook = hook.substr(0, hash);
    }
    bool found = false;
    for (const auto &[name, h] : hooks)
        if (hook == name) {
            f.hook = h;
            found = true;
        }
    if (!found) {
        error = "fault '" + text::excerpt(f.text) + "': unknown hook '" + text::excerpt(hook) +
                "' (expected open, connect, lock, transfer, unlock, disconnect, close or info)";
        return std::nullopt;
    }
    if (action == "block") {
        f.action = Fault::Action::Block;
    } else if (action == "crash") {
        f.action = Fault::Action::Crash;
    } else if (action.rfind("fail=", 0) == 0) {
        f.action = Fault::Action::Fail;
        auto s = parse_status(action.substr(5));
        if (!s || *s == DEVHOST_OK) {
            error = "fault '" + text::excerpt(f.text) + "': unknown status '" + text::excerpt(action.substr(5)) +
                    "' (expected a failure such as io, busy, timeout, removed or DEVHOST_E_IO)";
            return std::nullopt;
        }
        f.status = *s;
    } else if (action.rfind("short=", 0) == 0) {
        f.action = Fault::Action::Short;
        auto n = text::parse_int(action.substr(6));
        if (!n || *n < 0) {
            error = "fault '" + text::excerpt(f.text) + "': short=N needs a byte count";
            return std::nullopt;
        }
        if (f.hook != Hook::Transfer) {
            error = "fault '" + text::excerpt(f.text) + "': short=N applies to transfer only";
            return std::nullopt;
        }
        f.limit = static_cast<size_t>(*n);
    } else {
        error = "fault '" + text::excerpt(f.text) + "': unknown action '" + text::excerpt(action) +
                "' (expected fail=STATUS, block, short=N or crash)";
        return std::nullopt;
    }
    return f;
}

const Fault *FaultSchedule::next(Hook hook)
{
    const uint32_t n = ++calls_[static_cast<int>(hook)];
    for (const auto &f : faults_)
        if (f.hook == hook && (f.call == 0 || f.call == n))
            return &f;
    return nullptr;
}

}  // namespace devhost
