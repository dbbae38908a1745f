// devhost-vdev kind `parallel-port`: a virtual parallel port with a printer
// on it, served as vport:NAME to the parallel plugin's vport backend.
//
// Socket: $DEVHOST_VDEV_DIR/NAME.sock, announced as vport:/that/path (under
// `devhost run`, whose peers get a private directory); else
// $DEVHOST_VPORT_DIR/NAME.sock, else /run/devhost/vport/NAME.sock
// or, where that cannot be written, under $XDG_RUNTIME_DIR/devhost/vport
// (vport_dir_candidate in <devhost/vport_wire.h>, the SDK header that also
// documents the protocol). Each directory is created with an explicit mode
// and checked, with every directory above it (trusted_dir.hpp).
// READY prints "vport:NAME"; the plugin finds the socket from it the same way.
//
// The port follows the kernel's parport rules: any number of clients may be
// connected; one at a time holds the claim; waiters queue first come first
// served and a release (or a client going away) hands the claim to the next.
// A client that asked to be exclusive is refused when anyone else is
// connected, and nobody else may connect while it is.
//
// The printer latches the data register when STROBE rises with INIT and
// SELECT high (as a PC port's printer does), answers with BUSY then an ACK
// pulse on the next status reads, and appends every byte it takes to
// --output (created 0600 whatever the umask; a symbolic link planted in a
// directory others can write is not followed: output_file.hpp). Faults: paper-out, offline, busy-forever. --unplug-after=N
// removes the port (closes every connection, deletes the socket) once N
// bytes have been printed.
#include "vdev.hpp"

#include <devhost/unique_fd.hpp>
#include <devhost/vport_wire.h>
#include "trusted_dir.hpp"
#include "common/output_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace devhost::vdev {
namespace {

constexpr size_t max_clients = 64;

enum class Fault { none, paper_out, offline, busy_forever };

struct Client {
    UniqueFd fd;  // closed when the client is dropped
    bool hello = false;
    bool exclusive = false;
    std::string label;
};

class ParallelPort {
public:
    explicit ParallelPort(Context &ctx) : ctx_(ctx) {}
    ~ParallelPort();
    int run();

private:
    // A request as serve() received it; each on_* answers one command.
    struct Request {
        int fd;
        uint8_t cmd;
        uint32_t arg;
        const uint8_t *payload;
        size_t len;
    };

    void setup();
    void parse_options();
    void open_output(const std::string &output);
    std::string socket_dir() const;
    void bind_socket();
    void accept_client();
    void serve(int fd);
    void dispatch(Client &c, const Request &r);
    void on_hello(Client &c, const Request &r);
    void on_claim(const Request &r);
    void on_cancel(const Request &r);
    void on_release(const Request &r);
    void on_negotiate(const Request &r);
    void on_info(const Request &r);
    void on_reg_read(const Request &r);
    void on_reg_write(const Request &r);
    void on_write(const Request &r);
    void on_read(const Request &r);
    void drop(int fd);
    void unplug();
    void reply(int fd, uint8_t cmd, uint8_t status, uint32_t value = 0, const std::string &payload = {});
    void grant_next();
    uint8_t status_peek() const;
    uint8_t status_read();
    void print(const uint8_t *data, size_t len);
    bool owns(int fd) const { return owner_ == fd; }

    Context &ctx_;
    std::string socket_path_;
    UniqueFd listen_fd_;
    UniqueFd out_fd_;               // --output, when given
    std::map<int, Client> clients_; // by descriptor
    std::deque<int> queue_;
    int owner_ = -1;
    bool unplugged_ = false;

    // Options.
    std::string device_id_;
    Fault fault_ = Fault::none;
    long long unplug_after_ = 0;
    unsigned accepted_modes_ = 1u << VPORT_MODE_COMPAT;
    std::string reverse_data_;

    // Port registers and printer state.
    uint8_t data_ = 0;
    uint8_t control_ = VPORT_CONTROL_INIT | VPORT_CONTROL_SELECT;
    int mode_ = VPORT_MODE_COMPAT;
    int ack_phase_ = 0;  // status reads left in the busy/ack sequence
    long long printed_ = 0;
};

const char *const mode_names[VPORT_MODE_COUNT] = {"compat", "nibble", "byte", "ecp", "epp"};

bool valid_name(const std::string &name)
{
    if (name.empty() || name.size() > VPORT_NAME_MAX || name[0] == '.')
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

// Opens (creating what is missing) a directory for the socket: /run/...
// readable by all (the socket's own mode decides who connects), a private
// runtime directory for the user alone. Throws when it is not trusted.
void open_socket_dir(const std::string &dir)
{
    const mode_t mode = dir.rfind("/run/devhost/", 0) == 0 ? 0755 : 0700;
    trusted_dir::Error err;
    if (!trusted_dir::open(dir, mode, err))
        throw std::runtime_error(err.message);
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw std::runtime_error(dir + " is not a writable directory");
}

// The descriptors close themselves; the socket's name is ours to remove
// while we still listen on it.
ParallelPort::~ParallelPort()
{
    if (listen_fd_)
        ::unlink(socket_path_.c_str());
}

// The options, the printer's output, then the socket.
void ParallelPort::setup()
{
    if (!valid_name(ctx_.name))
        throw std::invalid_argument("--name=" + ctx_.name + ": use 1 to 64 of A-Z a-z 0-9 . _ -");
    parse_options();
    bind_socket();
}

// --device-id, --fault, --unplug-after, --modes, --reverse-data, --output:
// each checked, an unknown option refused, the output file opened.
void ParallelPort::parse_options()
{
    device_id_ = ctx_.get("device-id", "MFG:devhost;MDL:Virtual Printer;CMD:PCL,PJL;CLS:PRINTER;DES:devhost virtual printer;");
    if (device_id_.size() > VPORT_MAX_PAYLOAD - 4)
        throw std::invalid_argument("--device-id: at most " + std::to_string(VPORT_MAX_PAYLOAD - 4) + " bytes");
    std::string fault = ctx_.get("fault", "none");
    if (fault == "none")
        fault_ = Fault::none;
    else if (fault == "paper-out")
        fault_ = Fault::paper_out;
    else if (fault == "offline")
        fault_ = Fault::offline;
    else if (fault == "busy-forever")
        fault_ = Fault::busy_forever;
    else
        throw std::invalid_argument("--fault=" + fault + ": expected none, paper-out, offline or busy-forever");
    unplug_after_ = ctx_.get_int("unplug-after", 0);
    if (unplug_after_ < 0)
        throw std::invalid_argument("--unplug-after: expected a byte count >= 0");
    std::string modes = ctx_.get("modes", "compat,nibble,byte,ecp");
    size_t start = 0;
    while (start <= modes.size()) {
        size_t comma = modes.find(',', start);
        std::string m = modes.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        auto it = std::find(std::begin(mode_names), std::end(mode_names), m);
        if (it == std::end(mode_names))
            throw std::invalid_argument("--modes: '" + m + "' is not one of compat, nibble, byte, ecp, epp");
        accepted_modes_ |= 1u << (it - std::begin(mode_names));
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    reverse_data_ = ctx_.get("reverse-data", "");
    std::string output = ctx_.get("output", "");
    ctx_.reject_unknown();
    if (!output.empty())
        open_output(output);
}

// The printer's output file: created 0600, appended to (output_file.hpp).
void ParallelPort::open_output(const std::string &output)
{
    std::string error;
    auto file = devhost::output::open_append(output, 0600, error);
    if (!file)
        throw std::runtime_error("--output=" + output + ": " + error);
    out_fd_.reset(file->fd);
    // The printer's writes may wait for a reader: it prints what it took.
    ::fcntl(out_fd_.get(), F_SETFL, ::fcntl(out_fd_.get(), F_GETFL) & ~O_NONBLOCK);
}

// Under `devhost run`: the run's private directory (READY then names the
// socket's absolute path). Otherwise the first candidate directory we can
// create and write (the plugin looks in the same ones, in the same order).
std::string ParallelPort::socket_dir() const
{
    std::string dir = ctx_.run_dir, first_error;
    char candidate[sizeof(sockaddr_un::sun_path)];
    for (int i = 0; dir.empty() && vport_dir_candidate(i, candidate, sizeof candidate); i++) {
        try {
            open_socket_dir(candidate);
            dir = candidate;
        } catch (const std::exception &e) {
            if (first_error.empty())
                first_error = e.what();
        }
    }
    if (dir.empty())
        throw std::runtime_error("no directory for the vport socket: " + first_error);
    return dir;
}

// Listens on DIR/NAME.sock: refused when someone serves it already; a stale
// socket there is replaced, anything else at that name is not.
void ParallelPort::bind_socket()
{
    socket_path_ = socket_dir() + "/" + ctx_.name + ".sock";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("socket path " + socket_path_ + " is too long");
    std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);

    // A socket already there: served by someone else, or stale.
    if (UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)); probe) {
        if (::connect(probe.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
            throw std::runtime_error("vport:" + ctx_.name + " is already served at " + socket_path_);
    }
    struct stat st {};
    if (::lstat(socket_path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error(socket_path_ + " exists and is not a socket");
        ::unlink(socket_path_.c_str());
    }
    listen_fd_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_fd_)
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    // The socket is the user's alone (the umask may only narrow it): set
    // on the socket before bind, never on the path after.
    if (::fchmod(listen_fd_.get(), 0600) != 0)
        throw std::runtime_error(std::string("fchmod: ") + std::strerror(errno));
    if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_.get(), 16) != 0)
        throw std::runtime_error("bind " + socket_path_ + ": " + std::strerror(errno));
}

uint8_t ParallelPort::status_peek() const
{
    switch (fault_) {
    case Fault::paper_out: return VPORT_STATUS_ACK | VPORT_STATUS_PAPEROUT | VPORT_STATUS_SELECT;  // busy, error
    case Fault::offline: return VPORT_STATUS_ACK;                                                 // busy, error
    case Fault::busy_forever: return VPORT_STATUS_ACK | VPORT_STATUS_SELECT | VPORT_STATUS_ERROR; // busy
    case Fault::none: break;
    }
    if (ack_phase_ == 2)
        return VPORT_STATUS_ACK | VPORT_STATUS_SELECT | VPORT_STATUS_ERROR;  // busy, taking the byte
    if (ack_phase_ == 1)
        return VPORT_STATUS_SELECT | VPORT_STATUS_ERROR;  // busy, ACK pulse (low)
    return VPORT_STATUS_BUSY | VPORT_STATUS_ACK | VPORT_STATUS_SELECT | VPORT_STATUS_ERROR;  // ready
}

uint8_t ParallelPort::status_read()
{
    uint8_t s = status_peek();
    if (ack_phase_ > 0)
        ack_phase_--;
    return s;
}

void ParallelPort::print(const uint8_t *data, size_t len)
{
    if (out_fd_) {
        size_t done = 0;
        while (done < len) {
            ssize_t n = ::write(out_fd_.get(), data + done, len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                ctx_.log(std::string("cannot write the printer output: ") + std::strerror(errno));
                break;
            }
            done += static_cast<size_t>(n);
        }
    }
    printed_ += static_cast<long long>(len);
}

void ParallelPort::unplug()
{
    ctx_.log("unplugged after " + std::to_string(printed_) + " bytes");
    unplugged_ = true;
    // The socket goes first, so that a client seeing the hang-up cannot
    // reach a half-removed port.
    ::unlink(socket_path_.c_str());
    listen_fd_.reset();
    clients_.clear();  // closes every connection
    queue_.clear();
    owner_ = -1;
}

void ParallelPort::reply(int fd, uint8_t cmd, uint8_t status, uint32_t value, const std::string &payload)
{
    uint8_t msg[VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD] = {};
    size_t len = std::min<size_t>(payload.size(), VPORT_MAX_PAYLOAD);
    msg[0] = cmd;
    msg[1] = status;
    vport_put_u32(msg + 4, value);
    std::memcpy(msg + VPORT_HEADER_SIZE, payload.data(), len);
    // A client that stopped reading loses its reply; it sees the hang-up later.
    [[maybe_unused]] ssize_t n = ::send(fd, msg, VPORT_HEADER_SIZE + len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void ParallelPort::grant_next()
{
    owner_ = -1;
    while (!queue_.empty()) {
        int next = queue_.front();
        queue_.pop_front();
        if (clients_.count(next)) {
            owner_ = next;
            reply(next, VPORT_CMD_CLAIM, VPORT_OK);
            return;
        }
    }
}

void ParallelPort::drop(int fd)
{
    queue_.erase(std::remove(queue_.begin(), queue_.end(), fd), queue_.end());
    clients_.erase(fd);  // closes it
    if (owner_ == fd)
        grant_next();
}

void ParallelPort::accept_client()
{
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd)
        return;
    if (clients_.size() >= max_clients) {
        ctx_.log("refusing a client: " + std::to_string(max_clients) + " already connected");
        return;
    }
    const int key = fd.get();
    clients_[key].fd = std::move(fd);
}

// One request from client `fd`: received whole (SOCK_SEQPACKET), checked
// for its size and for HELLO first, then answered by its command's on_*.
void ParallelPort::serve(int fd)
{
    uint8_t msg[VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD + 1];
    ssize_t n = ::recv(fd, msg, sizeof msg, MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    Client &c = clients_[fd];
    const uint8_t cmd = n > 0 ? msg[0] : 0;
    if (static_cast<size_t>(n) < VPORT_HEADER_SIZE || static_cast<size_t>(n) > VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD) {
        reply(fd, cmd, VPORT_E_INVALID);
        return;
    }
    const Request r{fd, cmd, vport_get_u32(msg + 4), msg + VPORT_HEADER_SIZE,
                    static_cast<size_t>(n) - VPORT_HEADER_SIZE};
    if (cmd != VPORT_CMD_HELLO && !c.hello) {
        reply(fd, cmd, VPORT_E_STATE);
        return;
    }
    dispatch(c, r);
}

void ParallelPort::dispatch(Client &c, const Request &r)
{
    switch (r.cmd) {
    case VPORT_CMD_HELLO: return on_hello(c, r);
    case VPORT_CMD_CLAIM: return on_claim(r);
    case VPORT_CMD_CANCEL: return on_cancel(r);
    case VPORT_CMD_RELEASE: return on_release(r);
    case VPORT_CMD_NEGOTIATE: return on_negotiate(r);
    case VPORT_CMD_INFO: return on_info(r);
    case VPORT_CMD_REG_READ: return on_reg_read(r);
    case VPORT_CMD_REG_WRITE: return on_reg_write(r);
    case VPORT_CMD_WRITE: return on_write(r);
    case VPORT_CMD_READ: return on_read(r);
    default: return reply(r.fd, r.cmd, VPORT_E_UNSUPPORTED);
    }
}

// HELLO: once per connection; the exclusive rule (an exclusive client
// alone, nobody beside one) is applied here.
void ParallelPort::on_hello(Client &c, const Request &r)
{
    if (c.hello)
        return reply(r.fd, r.cmd, VPORT_E_STATE);
    const bool exclusive = r.arg & VPORT_HELLO_EXCLUSIVE;
    bool others = false, other_exclusive = false;
    for (const auto &[ofd, o] : clients_)
        if (ofd != r.fd && o.hello) {
            others = true;
            other_exclusive |= o.exclusive;
        }
    if (other_exclusive || (exclusive && others))
        return reply(r.fd, r.cmd, VPORT_E_BUSY);
    c.hello = true;
    c.exclusive = exclusive;
    c.label.assign(reinterpret_cast<const char *>(r.payload), std::min<size_t>(r.len, 64));
    reply(r.fd, r.cmd, VPORT_OK, VPORT_PROTOCOL_VERSION);
}

// CLAIM: granted at once when the port is free, else queued (answered by
// grant_next when its turn comes).
void ParallelPort::on_claim(const Request &r)
{
    if (owner_ == r.fd || std::find(queue_.begin(), queue_.end(), r.fd) != queue_.end()) {
        reply(r.fd, r.cmd, VPORT_E_STATE);
    } else if (owner_ < 0) {
        owner_ = r.fd;
        reply(r.fd, r.cmd, VPORT_OK);
    } else {
        queue_.push_back(r.fd);  // answered when granted
    }
}

// CANCEL: leaves the queue (0), or gives back a claim granted meanwhile (1).
void ParallelPort::on_cancel(const Request &r)
{
    auto it = std::find(queue_.begin(), queue_.end(), r.fd);
    if (it != queue_.end()) {
        queue_.erase(it);
        reply(r.fd, r.cmd, VPORT_OK, 0);
    } else if (owner_ == r.fd) {
        reply(r.fd, r.cmd, VPORT_OK, 1);
        grant_next();
    } else {
        reply(r.fd, r.cmd, VPORT_OK, 0);
    }
}

void ParallelPort::on_release(const Request &r)
{
    if (!owns(r.fd))
        return reply(r.fd, r.cmd, VPORT_E_STATE);
    reply(r.fd, r.cmd, VPORT_OK);
    grant_next();
}

// NEGOTIATE: the peripheral accepts the modes --modes lists.
void ParallelPort::on_negotiate(const Request &r)
{
    if (!owns(r.fd)) {
        reply(r.fd, r.cmd, VPORT_E_STATE);
    } else if (r.arg >= VPORT_MODE_COUNT) {
        reply(r.fd, r.cmd, VPORT_E_INVALID);
    } else if (!(accepted_modes_ & (1u << r.arg))) {
        reply(r.fd, r.cmd, VPORT_E_REFUSED);
    } else {
        mode_ = static_cast<int>(r.arg);
        reply(r.fd, r.cmd, VPORT_OK);
    }
}

// INFO: the port's modes; the lines, the mode and the device ID (no claim
// needed, and the status is peeked, not read).
void ParallelPort::on_info(const Request &r)
{
    uint32_t caps = VPORT_CAP_PCSPP | VPORT_CAP_TRISTATE | VPORT_CAP_COMPAT;
    if (accepted_modes_ & (1u << VPORT_MODE_ECP))
        caps |= VPORT_CAP_ECP;
    if (accepted_modes_ & (1u << VPORT_MODE_EPP))
        caps |= VPORT_CAP_EPP;
    std::string p;
    p += static_cast<char>(status_peek());
    p += static_cast<char>(control_);
    p += static_cast<char>(mode_);
    p += '\0';
    p += device_id_;
    reply(r.fd, r.cmd, VPORT_OK, caps, p);
}

void ParallelPort::on_reg_read(const Request &r)
{
    if (!owns(r.fd))
        reply(r.fd, r.cmd, VPORT_E_STATE);
    else if (r.arg == VPORT_REG_DATA)
        reply(r.fd, r.cmd, VPORT_OK, data_);
    else if (r.arg == VPORT_REG_STATUS)
        reply(r.fd, r.cmd, VPORT_OK, status_read());
    else if (r.arg == VPORT_REG_CONTROL)
        reply(r.fd, r.cmd, VPORT_OK, control_);
    else
        reply(r.fd, r.cmd, VPORT_E_INVALID);
}

// REG_WRITE: STROBE rising with INIT and SELECT high hands the data
// register to the printer (which may then be unplugged, unanswered).
void ParallelPort::on_reg_write(const Request &r)
{
    const uint32_t reg = r.arg & 0xff;
    const uint8_t value = static_cast<uint8_t>(r.arg >> 8);
    if (!owns(r.fd)) {
        reply(r.fd, r.cmd, VPORT_E_STATE);
    } else if (reg == VPORT_REG_DATA) {
        data_ = value;
        reply(r.fd, r.cmd, VPORT_OK);
    } else if (reg == VPORT_REG_CONTROL) {
        const bool rising = !(control_ & VPORT_CONTROL_STROBE) && (value & VPORT_CONTROL_STROBE);
        const bool ready = (value & VPORT_CONTROL_INIT) && (value & VPORT_CONTROL_SELECT);
        control_ = value;
        if (rising && ready && fault_ == Fault::none && ack_phase_ == 0) {
            print(&data_, 1);
            ack_phase_ = 2;
            if (unplug_after_ > 0 && printed_ >= unplug_after_)
                return unplug();  // no reply: the byte's transfer sees the removal
        }
        reply(r.fd, r.cmd, VPORT_OK);
    } else {
        reply(r.fd, r.cmd, VPORT_E_INVALID);
    }
}

// WRITE: the driver's compatibility-mode write; NOT_READY with the status
// under a fault; --unplug-after cuts it short and pulls the port.
void ParallelPort::on_write(const Request &r)
{
    if (!owns(r.fd) || mode_ == VPORT_MODE_NIBBLE || mode_ == VPORT_MODE_BYTE)
        return reply(r.fd, r.cmd, VPORT_E_STATE);
    if (r.len == 0)
        return reply(r.fd, r.cmd, VPORT_E_INVALID);
    if (fault_ != Fault::none)
        return reply(r.fd, r.cmd, VPORT_E_NOT_READY, status_peek());
    size_t take = r.len;
    bool pull = false;
    if (unplug_after_ > 0 && printed_ + static_cast<long long>(r.len) >= unplug_after_) {
        take = static_cast<size_t>(unplug_after_ - printed_);
        pull = true;
    }
    print(r.payload, take);
    if (pull)
        return unplug();
    reply(r.fd, r.cmd, VPORT_OK, static_cast<uint32_t>(take));
}

// READ: up to `arg` bytes of --reverse-data, in a reverse mode.
void ParallelPort::on_read(const Request &r)
{
    if (!owns(r.fd) || mode_ == VPORT_MODE_COMPAT)
        return reply(r.fd, r.cmd, VPORT_E_STATE);
    if (r.arg == 0 || r.arg > VPORT_MAX_PAYLOAD)
        return reply(r.fd, r.cmd, VPORT_E_INVALID);
    std::string chunk = reverse_data_.substr(0, r.arg);
    reverse_data_.erase(0, chunk.size());
    reply(r.fd, r.cmd, VPORT_OK, 0, chunk);
}

int ParallelPort::run()
{
    setup();
    ctx_.ready(std::string(VPORT_PATH_PREFIX) + (ctx_.run_dir.empty() ? ctx_.name : socket_path_));
    for (;;) {
        std::vector<pollfd> fds;
        fds.push_back({ctx_.stop_fd, POLLIN, 0});
        if (listen_fd_)
            fds.push_back({listen_fd_.get(), POLLIN, 0});
        for (const auto &[fd, c] : clients_)
            fds.push_back({fd, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
        }
        if (fds[0].revents)
            return 0;
        for (size_t i = 1; i < fds.size() && !unplugged_; i++) {
            if (!fds[i].revents)
                continue;
            if (fds[i].fd == listen_fd_.get())
                accept_client();
            else if (clients_.count(fds[i].fd))
                serve(fds[i].fd);
        }
    }
}

int run_parallel_port(Context &ctx)
{
    ParallelPort port(ctx);
    return port.run();
}

}  // namespace

DEVHOST_VDEV_KIND("parallel-port",
                  "a shared parallel port with a printer, served as vport:DIR/NAME.sock with $DEVHOST_VDEV_DIR, else as "
                  "vport:NAME (socket in $DEVHOST_VPORT_DIR, else "
                  "/run/devhost/vport or $XDG_RUNTIME_DIR/devhost/vport)",
                  {{"output", "FILE", "string"},
                   {"device-id", "TEXT", "string"},
                   {"fault", "none|paper-out|offline|busy-forever", "string"},
                   {"unplug-after", "N", "int"},
                   {"modes", "compat,nibble,byte,ecp,epp", "string"},
                   {"reverse-data", "TEXT", "string"}},
                  run_parallel_port);

}  // namespace devhost::vdev
