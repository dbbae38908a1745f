// The filterport plugin's private header: its backend (backend_socket.cpp),
// one client connection to a port server over a Unix SOCK_SEQPACKET socket,
// speaking devhost/port_wire.h, and the ports of a directory
// (backend_enumerate.cpp); plugin.cpp drives them from the hooks.
//
// Not thread-safe: the host never calls two hooks of one device at once, and
// a PortClient belongs to one device. Every wait polls the device's cancel
// handle and honours a deadline.
#pragma once

#include <devhost/plugin.h>
#include <devhost/port_wire.h>
#include <devhost/unique_fd.hpp>

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <vector>

namespace filterport {

struct PortClient {
    // Set by open.
    std::string path;
    bool sync = false;          // the sync option; connect's sync= overrides
    bool inherit = false;       // DEVHOST_OPEN_INHERIT
    uint32_t max_payload = DEVHOST_PORT_MAX_PAYLOAD;
    int64_t server_uid = -1;    // the server-uid option: -1 any server, else
                                // connect refuses a server run by another uid
    int cancel_fd = -1;
    const devhost_host_services *services = nullptr;
    const devhost_host_device *host_device = nullptr;

    ~PortClient() { disconnect(); }

    // The deadline of a call given timeout_ms: the earlier of it and the
    // running hook's deadline from the host (none from a 1.0 host).
    uint64_t deadline(int32_t timeout_ms) const;

    // Connects and says HELLO with the context, by deadline(timeout_ms); the
    // caller has validated the context/size pair. Once welcomed, the host
    // gets a copy of the socket (share_fd, role "socket"). On failure no
    // descriptor is left open.
    devhost_status connect(const void *context, uint32_t context_size, bool sync_handle, int32_t timeout_ms,
                           devhost_error *err);
    // Closes the socket: never waits (a Unix socket's close does not
    // linger), so it keeps any deadline. Takes back the host's copy first.
    void disconnect();
    bool connected() const { return fd_ || broken_ != DEVHOST_OK; }
    int fd() const { return fd_.get(); }
    bool sync_handle() const { return sync_handle_; }
    size_t queued_messages() const { return inbox_.size(); }
    size_t unanswered_messages() const { return unanswered_.size(); }
    // The server's credentials (SO_PEERCRED), once connected.
    bool server_credentials(int &pid, unsigned &uid, unsigned &gid) const;

    // REQUEST: sends `out`, waits for the RESPONSE with the same id.
    devhost_status request(const uint8_t *out, size_t out_len, uint8_t *in, size_t in_capacity, size_t &in_len,
                           size_t &out_done, int32_t timeout_ms, devhost_error *err);
    // GET_MESSAGE: the oldest MESSAGE the server sent, with its id.
    devhost_status get_message(uint8_t *in, size_t in_capacity, size_t &in_len, uint64_t &id, int32_t timeout_ms,
                               devhost_error *err);
    // REPLY to a message get_message returned and nobody answered yet.
    devhost_status reply(uint64_t id, const uint8_t *out, size_t out_len, size_t &out_done, int32_t timeout_ms,
                         devhost_error *err);

private:
    struct Message {
        uint64_t id;
        std::vector<uint8_t> data;
    };
    struct Frame {
        uint32_t type = 0;
        int32_t status = 0;
        uint64_t id = 0;
        std::vector<uint8_t> payload;
    };

    devhost_status send_frame(uint32_t type, uint32_t flags, uint64_t id, const void *payload, size_t len,
                              uint64_t deadline_ns, devhost_error *err);
    // Sends the first n bytes of buf (an encoded frame of `type`) whole,
    // waiting for room until the deadline; E_TIMEOUT and E_CANCELLED come
    // back with their message. A send that fails otherwise goes to
    // `failed(errno)` (0 for a short send), whose status is returned: what
    // a failure means differs between HELLO and the frames after it.
    template <class Failed>
    devhost_status send_whole(const std::vector<uint8_t> &buf, size_t n, uint32_t type, uint64_t deadline_ns,
                              devhost_error *err, Failed failed);
    // connect's phases. open_socket: the socket, connected to `path`
    // (retrying while the server's backlog is full); on failure fd_ stays
    // empty. handshake: HELLO and its WELCOME; a refusal, a missing WELCOME
    // or a cancel is the connect's failure, with the message connect gives.
    devhost_status open_socket(uint64_t deadline_ns, devhost_error *err);
    devhost_status handshake(const void *context, uint32_t context_size, bool sync_handle, uint64_t deadline_ns,
                             devhost_error *err);
    // Sends HELLO. A server that refused us when it accepted the connection
    // has answered and closed: the send fails (EPIPE) but its WELCOME is
    // still queued, so *closed is set and the caller reads on.
    devhost_status send_hello(const void *context, uint32_t context_size, bool sync_handle, uint64_t deadline_ns,
                              bool &closed, devhost_error *err);
    // Refuses a server run by another uid than server_uid (before HELLO, so
    // the context goes to no one else).
    devhost_status check_server(devhost_error *err);
    // Receives one frame; `wait_first`: poll before the first recv (when
    // the frame cannot be there yet), otherwise recv first and poll on EAGAIN.
    devhost_status recv_frame(Frame &frame, uint64_t deadline_ns, devhost_error *err, bool wait_first = false);
    // Waits for `events` on the socket (devhost_util_wait): OK, E_TIMEOUT,
    // E_CANCELLED or E_IO. Past the deadline it still looks once without
    // waiting. Deadlines are absolute monotonic ns (devhost/plugin_util.h).
    devhost_status wait_fd(short events, uint64_t deadline_ns, devhost_error *err);
    // Handles a frame that is not what the caller waits for: queues a
    // MESSAGE, drops a RESPONSE to an abandoned request, refuses the rest.
    devhost_status stray_frame(Frame &frame, devhost_error *err);
    // Marks the connection unusable: closes the socket, remembers why, and
    // returns the status for the current transfer.
    devhost_status break_connection(devhost_status status, int os_errno, const std::string &why, devhost_error *err);
    devhost_status check_usable(devhost_error *err) const;
    // Closes the socket, the host's copy first (when it holds one), so that
    // the server sees the disconnect now.
    void close_socket();
    void log(int32_t level, const std::string &line) const;

    devhost::UniqueFd fd_;
    bool shared_ = false;  // the host holds a copy of fd_ (share_fd)
    bool sync_handle_ = false;
    uint64_t next_request_ = 1;
    std::deque<Message> inbox_;        // MESSAGEs not yet got
    std::set<uint64_t> unanswered_;    // got, not yet replied
    std::deque<uint64_t> answered_;    // replied (for a clear error)
    std::deque<uint64_t> abandoned_;   // REQUEST ids that timed out
    devhost_status broken_ = DEVHOST_OK;
    std::string broken_why_;
    std::vector<uint8_t> rx_;
};

// One port enumerate found; empty: not known.
struct FoundPort {
    std::string path, description;
};
// The port directory enumerate lists: $DEVHOST_PORT_DIR when set to an
// absolute path, else DEVHOST_PORT_DEFAULT_DIR (/run/devhost/ports).
std::string enumerate_dir();
// The sockets directly in `dir` (lstat: a link is not a port), in name
// order, without connecting to any. A missing directory is no port and OK;
// one that cannot be read is E_IO (or E_ACCESS); past `deadline_ns`,
// E_TIMEOUT with what was found by then.
devhost_status enumerate_ports(const std::string &dir, uint64_t deadline_ns, std::vector<FoundPort> &found,
                               devhost_error *err);

}  // namespace filterport
