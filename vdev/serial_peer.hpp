// Shared machinery of the serial peers (serial-echo, serial-modem,
// serial-script): a pty whose slave a device opens through a stable symlink,
// and the far end played by the peer on the master.
//
// Common options:
//   --link=PATH          symlink to the pty slave (default DIR/NAME, DIR being
//                        $DEVHOST_VDEV_DIR, else /run/devhost/vdev)
//   --delay=D            wait D before each reply (250ms, 2s)
//   --garbage=N          send N garbage bytes before each reply
//   --hangup-after=N     after receiving N bytes (and --delay), close the
//                        master: the device side sees a hang-up (removal)
//   --hold=true          hold the slave open with flock and TIOCEXCL, so a
//                        device's exclusive open is busy
#pragma once

#include "vdev.hpp"

#include <devhost/unique_fd.hpp>

#include <cstdint>
#include <deque>
#include <string>

namespace devhost::vdev {

// The C escapes of DATA in unquoted text (as if it were quoted). Throws
// std::invalid_argument naming the text and what is wrong.
std::string unescape_serial(const std::string &text);

class SerialPeer {
public:
    // Reads the common options; a derived kind reads its own in its
    // constructor, then calls run().
    explicit SerialPeer(Context &ctx);
    virtual ~SerialPeer();
    SerialPeer(const SerialPeer &) = delete;
    SerialPeer &operator=(const SerialPeer &) = delete;

    // Creates the pty and the symlink, prints READY, serves until stop_fd.
    int run();

protected:
    // Bytes the device wrote.
    virtual void on_input(const std::string &bytes) = 0;
    // Queues a reply: after --delay, preceded by --garbage bytes.
    void reply(const std::string &bytes);
    // Queues bytes with no delay or garbage (a modem's echo).
    void send_now(const std::string &bytes);
    // Makes later output wait `seconds` more.
    void pause(double seconds);

    Context &ctx_;

private:
    struct Chunk {
        double due;  // monotonic seconds
        std::string bytes;
        bool hangup = false;
    };
    void setup();
    void publish();
    void hang_up();
    void queue(Chunk c);
    void cleanup();

    std::string link_;
    double delay_ = 0;
    long long garbage_ = 0;
    long long hangup_after_ = 0;
    bool hold_ = false;
    long long received_ = 0;
    bool hangup_queued_ = false;
    UniqueFd master_;
    UniqueFd slave_;  // kept open so the master never sees EIO between users
    std::string slave_path_;
    bool linked_ = false;
    std::deque<Chunk> out_;
};

double monotonic_seconds();

// A serial kind's Runner (DEVHOST_VDEV_KIND): its peer, built from the
// options, serving until stopped.
template <class Peer> int run_peer(Context &ctx)
{
    Peer peer(ctx);
    return peer.run();
}

}  // namespace devhost::vdev
