// serial-modem: a pty peer answering AT commands like a Hayes modem.
// Commands end with CR (LF is ignored). Replies use the verbose form
// "\r\nOK\r\n". Built in: AT (OK), ATI (identity, then OK), ATE0/ATE1
// (echo off/on, default on), ATZ (reset: echo on), anything else ERROR.
// Configured answers come first: --answer=CMD:REPLY[;CMD:REPLY...] and
// --answers=FILE (one CMD:REPLY a line, # comments); REPLY takes C escapes
// and is sent as "\r\nREPLY\r\n". Commands match case-insensitively.
#include "serial_peer.hpp"
#include "common/text_file.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>

namespace devhost::vdev {
namespace {

std::string upper(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::toupper(c)); });
    return s;
}

std::string trim(const std::string &s)
{
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

class ModemPeer : public SerialPeer {
public:
    explicit ModemPeer(Context &ctx) : SerialPeer(ctx)
    {
        identity_ = unescape_serial(ctx.get("identity", "devhost virtual modem"));
        echo_ = ctx.get_bool("echo", true);
        std::string inline_answers = ctx.get("answer");
        size_t start = 0;
        while (start < inline_answers.size()) {
            size_t end = inline_answers.find(';', start);
            if (end == std::string::npos)
                end = inline_answers.size();
            add_answer(inline_answers.substr(start, end - start), "--answer");
            start = end + 1;
        }
        std::string file = ctx.get("answers");
        if (!file.empty()) {
            std::istringstream in(read_answers(file));
            std::string line;
            for (int no = 1; std::getline(in, line); no++) {
                std::string t = trim(line);
                if (t.empty() || t[0] == '#')
                    continue;
                add_answer(t, file + ":" + std::to_string(no));
            }
        }
    }

protected:
    void on_input(const std::string &bytes) override
    {
        for (char c : bytes) {
            if (echo_)
                send_now(std::string(1, c));
            if (c == '\n')
                continue;
            if (c != '\r') {
                if (line_.size() < 1024)
                    line_ += c;
                continue;
            }
            std::string cmd = upper(trim(line_));
            line_.clear();
            if (!cmd.empty())
                answer(cmd);
        }
    }

private:
    // The answers file: a regular file of at most 1 MiB (a directory, FIFO
    // or device such as /dev/zero is refused, not read forever).
    static std::string read_answers(const std::string &file)
    {
        using Kind = text::FileRefusal::Kind;
        constexpr uint64_t max_bytes = 1u << 20;
        const std::string prefix = "--answers=" + file + ": ";
        text::FileRefusal why;
        auto text = text::read_small_file(file, max_bytes, why);
        if (text)
            return *text;
        switch (why.kind) {
        case Kind::Directory: throw std::invalid_argument(prefix + "is a directory, not an answers file");
        case Kind::NotRegular:
            throw std::invalid_argument(prefix + "not a regular file (a FIFO or device is not an answers file)");
        case Kind::TooLarge:
            throw std::invalid_argument(prefix + "larger than " + std::to_string(max_bytes) + " bytes");
        case Kind::Read: throw std::invalid_argument(prefix + "cannot read the file: " + std::strerror(why.os_errno));
        default: throw std::invalid_argument(prefix + "cannot open the file");
        }
    }

    void add_answer(const std::string &spec, const std::string &where)
    {
        size_t colon = spec.find(':');
        if (colon == std::string::npos || colon == 0)
            throw std::invalid_argument(where + ": '" + spec + "': expected CMD:REPLY");
        std::string cmd = upper(trim(spec.substr(0, colon)));
        try {
            answers_[cmd] = unescape_serial(spec.substr(colon + 1));
        } catch (const std::invalid_argument &e) {
            throw std::invalid_argument(where + ": " + e.what());
        }
    }

    void answer(const std::string &cmd)
    {
        auto it = answers_.find(cmd);
        if (it != answers_.end())
            return reply("\r\n" + it->second + "\r\n");
        if (cmd == "AT")
            return reply("\r\nOK\r\n");
        if (cmd == "ATI")
            return reply("\r\n" + identity_ + "\r\n\r\nOK\r\n");
        if (cmd == "ATE0" || cmd == "ATE1") {
            echo_ = cmd == "ATE1";
            return reply("\r\nOK\r\n");
        }
        if (cmd == "ATZ") {
            echo_ = true;
            return reply("\r\nOK\r\n");
        }
        reply("\r\nERROR\r\n");
    }

    std::string identity_;
    bool echo_ = true;
    std::string line_;
    std::map<std::string, std::string> answers_;
};

}  // namespace
}  // namespace devhost::vdev

DEVHOST_VDEV_KIND("serial-modem", "pty peer answering AT commands (AT, ATI, ATE0/1, ATZ, configured answers)",
                  devhost::vdev::serial_peer_options({{"identity", "TEXT", "string"},
                                                      {"echo", "BOOL", "bool"},
                                                      {"answer", "CMD:REPLY[;...]", "string"},
                                                      {"answers", "FILE", "string"}}),
                  devhost::vdev::run_peer<devhost::vdev::ModemPeer>);
