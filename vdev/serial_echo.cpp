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
                  devhost::vdev::serial_peer_options(),
                  devhost::vdev::run_peer<devhost::vdev::EchoPeer>);
