// serial-script: a pty peer that plays a script of expect/send lines (the
// language: vdev/script/serial_script_parse.hpp). When the script ends the
// peer keeps the port open and ignores input, or starts over with --loop=true.
// A malformed script fails before READY with FILE:LINE and the reason.
#include "serial_peer.hpp"
#include "serial_script_parse.hpp"

#include "common/text_file.hpp"

#include <cstring>
#include <stdexcept>
#include <vector>

namespace devhost::vdev {
namespace {

// Reads the script file (a regular file of at most max_script_bytes: a
// directory, FIFO or device such as /dev/zero is refused, not read forever)
// and parses it.
std::vector<ScriptStep> load_script(const std::string &file)
{
    using Kind = text::FileRefusal::Kind;
    const std::string prefix = "--script=" + file + ": ";
    text::FileRefusal why;
    auto text = text::read_small_file(file, max_script_bytes, why);
    if (text)
        return parse_serial_script(*text, file);
    switch (why.kind) {
    case Kind::Directory: throw std::invalid_argument(prefix + "is a directory, not a script file");
    case Kind::NotRegular:
        throw std::invalid_argument(prefix + "not a regular file (a FIFO or device is not a script)");
    case Kind::TooLarge:
        throw std::invalid_argument(prefix + "larger than " + std::to_string(max_script_bytes) + " bytes");
    case Kind::Read: throw std::invalid_argument(prefix + "cannot read the file: " + std::strerror(why.os_errno));
    default: throw std::invalid_argument(prefix + "cannot open the file: " + std::strerror(why.os_errno));
    }
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
            const ScriptStep &s = steps_[at_];
            if (s.kind == ScriptStep::expect) {
                size_t pos = received_.find(s.data);
                if (pos == std::string::npos)
                    return;
                received_.erase(0, pos + s.data.size());
            } else if (s.kind == ScriptStep::send) {
                reply(s.data);
            } else {
                pause(static_cast<double>(s.ms) / 1000.0);
            }
            if (++at_ == steps_.size() && loop_)
                at_ = 0;
            if (loop_ && at_ == 0 && !has_expect())
                return;  // a loop with nothing to wait for would never stop
        }
    }
    bool has_expect() const
    {
        for (const ScriptStep &s : steps_)
            if (s.kind == ScriptStep::expect)
                return true;
        return false;
    }

    std::vector<ScriptStep> steps_;
    size_t at_ = 0;
    bool loop_ = false;
    std::string received_;
};

}  // namespace
}  // namespace devhost::vdev

DEVHOST_VDEV_KIND("serial-script", "pty peer playing a script of expect/send lines",
                  devhost::vdev::serial_peer_options({{"script", "FILE", "string", true}, {"loop", "BOOL", "bool"}}),
                  devhost::vdev::run_peer<devhost::vdev::ScriptPeer>);
