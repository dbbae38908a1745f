// serial-echo: a pty peer that sends back every byte it receives.
#include "serial_peer.hpp"

namespace devhost::vdev {
namespace {

class EchoPeer : public SerialPeer {
public:
    using SerialPeer::SerialPeer;

protected:
    void on_input(const std::string &bytes) override { reply(bytes); }
};

}  // namespace
}  // namespace devhost::vdev

DEVHOST_VDEV_KIND("serial-echo", "pty peer that echoes every byte back",
                  "--link=PATH (default: DIR/NAME) --delay=D --garbage=N --hangup-after=N --hold=BOOL",
                  devhost::vdev::run_peer<devhost::vdev::EchoPeer>);
