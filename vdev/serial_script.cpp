// serial-script: a pty peer that plays a script of expect/send lines.
//   # comment
//   send "HELLO\r\n"        send bytes (after --delay, with --garbage)
//   expect "PING\r\n"       wait until the received bytes contain this
//   sleep 250ms             wait before what follows is sent
// DATA is "C-escaped" or hex:0a0b. When the script ends the peer keeps the
// port open and ignores input, or starts over with --loop=true.
// A malformed script fails before READY with FILE:LINE and the reason.
#include "serial_peer.hpp"

#include <fstream>
#include <stdexcept>
#include <vector>

namespace devhost::vdev {
namespace {

struct Step {
    enum Kind { send, expect, sleep } kind;
    std::string data;
    double seconds = 0;
};

double parse_duration(const std::string &v)
{
    size_t end = 0;
    double n = std::stod(v, &end);
    std::string unit = v.substr(end);
    if (n < 0)
        throw std::invalid_argument("negative");
    if (unit == "ms")
        return n / 1000;
    if (unit == "s" || unit.empty())
        return n;
    throw std::invalid_argument("unit");
}

std::vector<Step> load_script(const std::string &file)
{
    std::ifstream in(file);
    if (!in)
        throw std::invalid_argument("--script=" + file + ": cannot open the file");
    std::vector<Step> steps;
    std::string line;
    for (int no = 1; std::getline(in, line); no++) {
        std::string where = file + ":" + std::to_string(no) + ": ";
        size_t a = line.find_first_not_of(" \t\r");
        if (a == std::string::npos || line[a] == '#')
            continue;
        size_t b = line.find_last_not_of(" \t\r");
        std::string t = line.substr(a, b - a + 1);
        size_t sp = t.find_first_of(" \t");
        std::string word = t.substr(0, sp);
        std::string arg = sp == std::string::npos ? "" : t.substr(t.find_first_not_of(" \t", sp));
        if (word != "send" && word != "expect" && word != "sleep")
            throw std::invalid_argument(where + "expected 'send DATA', 'expect DATA' or 'sleep D', got '" + word + "'");
        if (arg.empty())
            throw std::invalid_argument(where + "'" + word + "' needs an argument");
        Step s{word == "send" ? Step::send : word == "expect" ? Step::expect : Step::sleep, {}, 0};
        if (s.kind == Step::sleep) {
            try {
                s.seconds = parse_duration(arg);
            } catch (const std::exception &) {
                throw std::invalid_argument(where + "'" + arg + "' is not a duration like 250ms or 2s");
            }
        } else {
            if (arg[0] != '"' && arg.rfind("hex:", 0) != 0)
                throw std::invalid_argument(where + "DATA must be \"quoted\" or hex:..., got '" + arg + "'");
            try {
                s.data = parse_serial_data(arg);
            } catch (const std::invalid_argument &e) {
                throw std::invalid_argument(where + e.what());
            }
            if (s.kind == Step::expect && s.data.empty())
                throw std::invalid_argument(where + "'expect' needs non-empty data");
        }
        steps.push_back(std::move(s));
    }
    if (steps.empty())
        throw std::invalid_argument("--script=" + file + ": no steps in the script");
    return steps;
}

class ScriptPeer : public SerialPeer {
public:
    explicit ScriptPeer(Context &ctx) : SerialPeer(ctx)
    {
        std::string file = ctx.get("script");
        loop_ = ctx.get_bool("loop", false);
        if (file.empty())
            throw std::invalid_argument("--script=FILE is required");
        steps_ = load_script(file);
        advance();  // sends before the first expect go out at once
    }

protected:
    void on_input(const std::string &bytes) override
    {
        received_ += bytes;
        advance();
        if (at_ >= steps_.size() && received_.size() > 65536)
            received_.clear();
    }

private:
    // Runs steps until one waits for input that has not come yet.
    void advance()
    {
        while (at_ < steps_.size()) {
            const Step &s = steps_[at_];
            if (s.kind == Step::expect) {
                size_t pos = received_.find(s.data);
                if (pos == std::string::npos)
                    return;
                received_.erase(0, pos + s.data.size());
            } else if (s.kind == Step::send) {
                reply(s.data);
            } else {
                pause(s.seconds);
            }
            if (++at_ == steps_.size() && loop_)
                at_ = 0;
            if (loop_ && at_ == 0 && !has_expect())
                return;  // a loop with nothing to wait for would never stop
        }
    }
    bool has_expect() const
    {
        for (const Step &s : steps_)
            if (s.kind == Step::expect)
                return true;
        return false;
    }

    std::vector<Step> steps_;
    size_t at_ = 0;
    bool loop_ = false;
    std::string received_;
};

int run_script(Context &ctx)
{
    ScriptPeer peer(ctx);
    return peer.run();
}

}  // namespace
}  // namespace devhost::vdev

DEVHOST_VDEV_KIND("serial-script", "pty peer playing a script of expect/send lines",
                  "--script=FILE --loop=BOOL --link=PATH (default: DIR/NAME) --delay=D --garbage=N --hangup-after=N --hold=BOOL",
                  devhost::vdev::run_script);
