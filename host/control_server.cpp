#include "control_server.hpp"

#include "control_socket.hpp"
#include "config.hpp"
#include "control_wire.hpp"
#include "common/text.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace devhost::control {

using nlohmann::json;

namespace {

constexpr uint64_t listener_id = 0;
constexpr int max_accepts = 16;     // per process(): others wait for the next
constexpr int max_reads = 4;        // reads of one client per process()
constexpr size_t read_size = 16384;

struct Client {
    uint64_t id = 0;
    UniqueFd fd;
    Peer peer;
    FrameReader reader;
    std::string out;       // queued bytes; out_pos of them already sent
    size_t out_pos = 0;
    bool writing = false;  // EPOLLOUT registered
    bool monitor = false;
    bool eof = false;      // the client will send no more
    bool closing = false;  // close once `out` is sent
    bool dead = false;     // close now
    int pending = 0;       // calls whose reply is still to come

    std::string who() const
    {
        return "uid " + std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) + ")";
    }
};

}  // namespace

struct Server::State : std::enable_shared_from_this<Server::State> {
    Handler &handler;
    ServerSettings settings;
    Listener listener;
    UniqueFd epoll;
    std::map<uint64_t, Client> clients;
    uint64_t next_id = 1;
    int busy = 0;  // inside process() or publish(): clients are not erased until it ends

    State(Handler &h, ServerSettings s) : handler(h), settings(std::move(s)) {}

    void accept_all();
    void admit(UniqueFd fd);
    void read_client(Client &c);
    void handle_frame(Client &c, const std::string &frame);
    void dispatch(Client &c, const std::string &method, const json &parameters);
    bool known_device(const std::string &device);
    void queue(Client &c, const json &message);
    void flush(Client &c);
    void watch(Client &c, bool out);
    void sweep();
    void bad_frame(Client &c, const char *error, const std::string &message);
};

namespace {

std::string methods_text()
{
    return std::string(method_list) + ", " + method_call + ", " + method_reset + ", " + method_reload + " or " +
           method_monitor;
}

// A handler's "error" value as a message.
std::string error_text(const json &error) { return error.is_string() ? error.get<std::string>() : error.dump(); }

}  // namespace

ServerSettings server_settings(const HostSettings &host)
{
    ServerSettings s;
    s.path = host.control_socket;
    if (host.control_gid) {
        s.group = static_cast<gid_t>(*host.control_gid);
        s.group_name = host.control_group.value_or(std::to_string(*host.control_gid));
    }
    return s;
}

Server::Server(Handler &handler, ServerSettings settings) : state_(std::make_shared<State>(handler, std::move(settings)))
{
    State &s = *state_;
    std::string error;
    s.listener = listen_socket(s.settings.path, s.settings.group, error);
    if (!s.listener.fd)
        throw ServerError(error);
    s.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listener_id;
    if (!s.epoll || ::epoll_ctl(s.epoll.get(), EPOLL_CTL_ADD, s.listener.fd.get(), &ev) != 0) {
        const int e = errno;
        remove_socket(s.settings.path, s.listener);
        throw ServerError("control socket " + s.settings.path + ": epoll: " + std::strerror(e));
    }
    spdlog::info("control socket {} (root{})", s.settings.path,
                 s.settings.group ? " and group " + s.settings.group_name : std::string(" only"));
}

Server::~Server()
{
    state_->clients.clear();
    remove_socket(state_->settings.path, state_->listener);
}

int Server::fd() const { return state_->epoll.get(); }

size_t Server::clients() const { return state_->clients.size(); }

size_t Server::subscribers() const
{
    size_t n = 0;
    for (const auto &[id, c] : state_->clients)
        n += c.monitor && !c.dead;
    return n;
}

void Server::process()
{
    State &s = *state_;
    s.busy++;
    epoll_event events[32];
    const int n = ::epoll_wait(s.epoll.get(), events, 32, 0);
    for (int i = 0; i < n; i++) {
        if (events[i].data.u64 == listener_id) {
            s.accept_all();
            continue;
        }
        auto it = s.clients.find(events[i].data.u64);
        if (it == s.clients.end() || it->second.dead)
            continue;
        Client &c = it->second;
        const uint32_t ev = events[i].events;
        if (ev & EPOLLOUT)
            s.flush(c);
        if (!c.dead && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            s.read_client(c);
        // Both directions closed (the peer is gone): nothing more can reach
        // it, and the hang-up would be reported on every wait.
        if (ev & (EPOLLHUP | EPOLLERR))
            c.dead = true;
    }
    s.busy--;
    s.sweep();
}

void Server::publish(const json &event)
{
    State &s = *state_;
    const json message = {{"parameters", event}, {"continues", true}};
    s.busy++;
    for (auto &[id, c] : s.clients)
        if (c.monitor && !c.dead && !c.closing)
            s.queue(c, message);
    s.busy--;
    s.sweep();
}

void Server::State::accept_all()
{
    for (int i = 0; i < max_accepts; i++) {
        UniqueFd fd(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR)
                spdlog::warn("control socket {}: accept: {}", settings.path, std::strerror(errno));
            if (errno != ECONNABORTED && errno != EINTR)
                return;
            continue;
        }
        admit(std::move(fd));
    }
}

// A new connection: refused when its peer may not use the socket or too
// many are open (the reply written at once, best effort: the socket's
// buffer is empty), else watched.
void Server::State::admit(UniqueFd fd)
{
    Peer peer = check_peer(fd.get(), settings.group);
    auto refuse = [&](const char *error, const std::string &message) {
        const std::string bytes = encode(error_reply(error, message));
        (void)!::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    };
    if (!peer.allowed) {
        const std::string message =
            !peer.error.empty() ? "cannot read the peer's credentials: " + peer.error
            : settings.group    ? "uid " + std::to_string(peer.uid) + " is not root and not in group '" +
                                   settings.group_name + "' ([host] control-group)"
                                : "uid " + std::to_string(peer.uid) + " is not root (no [host] control-group is set)";
        spdlog::warn("control socket {}: refused pid {}: {}", settings.path, peer.pid, message);
        return refuse(errors::permission_denied, message);
    }
    if (clients.size() >= settings.max_clients) {
        spdlog::warn("control socket {}: refused pid {}: {} clients are connected already", settings.path, peer.pid,
                     clients.size());
        return refuse(errors::too_many_clients,
                      std::to_string(clients.size()) + " clients are connected already; try again later");
    }
    Client c;
    c.id = next_id++;
    c.peer = peer;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c.id;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
        spdlog::warn("control socket {}: epoll: {}", settings.path, std::strerror(errno));
        return;
    }
    c.fd = std::move(fd);
    clients.emplace(c.id, std::move(c));
}

void Server::State::read_client(Client &c)
{
    char buf[read_size];
    for (int i = 0; i < max_reads && !c.dead && !c.closing && !c.eof; i++) {
        const ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            c.eof = true;  // no more calls: close once every reply is sent
            watch(c, c.out.size() > c.out_pos);
            if (c.monitor || (c.pending == 0 && c.out.size() == c.out_pos))
                c.dead = true;
            return;
        }
        c.reader.feed(buf, static_cast<size_t>(n));
        while (!c.dead && !c.closing) {
            auto frame = c.reader.next();
            if (!frame)
                break;
            handle_frame(c, *frame);
        }
        if (c.reader.too_long())
            return bad_frame(c, errors::invalid_frame,
                             "frame longer than " + std::to_string(max_frame) + " bytes without its NUL end");
    }
}

void Server::State::bad_frame(Client &c, const char *error, const std::string &message)
{
    spdlog::warn("control socket {}: {}: {}; closing the connection", settings.path, c.who(), message);
    queue(c, error_reply(error, message));
    c.closing = true;
    c.eof = true;  // read nothing more: what follows a bad frame cannot be trusted
    if (c.out.size() == c.out_pos)
        c.dead = true;
    else
        watch(c, true);
}

void Server::State::handle_frame(Client &c, const std::string &frame)
{
    std::string error;
    auto message = parse_message(frame, error);
    if (!message)
        return bad_frame(c, errors::invalid_frame, error);
    auto method = message->find("method");
    if (method == message->end() || !method->is_string())
        return bad_frame(c, errors::invalid_frame, "the call has no \"method\" string");
    json parameters = json::object();
    if (auto p = message->find("parameters"); p != message->end()) {
        if (!p->is_object())
            return bad_frame(c, errors::invalid_parameter, "\"parameters\" is not an object");
        parameters = *p;
    }
    try {
        dispatch(c, method->get<std::string>(), parameters);
    } catch (const std::exception &e) {  // the handler's: one reply, never a crash
        spdlog::error("control socket {}: {} failed: {}", settings.path, method->get<std::string>(), e.what());
        queue(c, error_reply(errors::body_failed, std::string("internal error: ") + e.what()));
    }
}

bool Server::State::known_device(const std::string &device)
{
    for (const auto &d : handler.list())
        if (d.is_object() && d.value("device", "") == device)
            return true;
    return false;
}

void Server::State::dispatch(Client &c, const std::string &method, const json &parameters)
{
    if (method == method_list)
        return queue(c, {{"parameters", {{"devices", handler.list()}}}});
    if (method == method_reload) {
        json r = handler.reload();
        // A reload done may carry warnings ({"warnings": [line, ...]}).
        return queue(c, r.contains("error") ? error_reply(errors::reload_failed, error_text(r["error"]))
                                            : json{{"parameters", r.is_object() ? r : json::object()}});
    }
    if (method == method_monitor) {
        c.monitor = true;
        return queue(c, {{"parameters", {{"devices", handler.list()}}}, {"continues", true}});
    }
    if (method != method_call && method != method_reset)
        return bad_frame(c, errors::method_not_found,
                         "unknown method '" + text::excerpt(method) + "' (expected " + methods_text() + ")");
    auto device = parameters.find("device");
    if (device == parameters.end() || !device->is_string())
        return bad_frame(c, errors::invalid_parameter, method + " needs the parameter \"device\" (a string)");
    const std::string name = device->get<std::string>();
    if (!known_device(name))
        return queue(c, error_reply(errors::no_such_device, "no device '" + text::excerpt(name) + "' is served"));
    if (method == method_reset) {
        json r = handler.reset(name);
        return queue(c, r.contains("error") ? error_reply(errors::reset_failed, error_text(r["error"]))
                                            : json{{"parameters", json::object()}});
    }
    c.pending++;
    // The reply comes later: to a client (and a server) that may be gone.
    handler.call(name, [weak = weak_from_this(), id = c.id](json result) {
        auto self = weak.lock();
        if (!self)
            return;
        auto it = self->clients.find(id);
        if (it == self->clients.end() || it->second.dead)
            return;  // the client went away meanwhile
        Client &cl = it->second;
        State &s = *self;
        cl.pending--;
        s.queue(cl, result.contains("error") ? error_reply(errors::body_failed, error_text(result["error"]))
                                             : json{{"parameters", result}});
        if (cl.eof && cl.pending == 0 && cl.out.size() == cl.out_pos)
            cl.dead = true;
        s.sweep();
    });
}

void Server::State::queue(Client &c, const json &message)
{
    if (c.dead)
        return;
    c.out += encode(message);
    if (c.out.size() - c.out_pos > settings.max_output) {
        spdlog::warn("control socket {}: dropped {}: more than {} bytes it did not read", settings.path, c.who(),
                     settings.max_output);
        c.dead = true;
        return;
    }
    flush(c);
}

void Server::State::flush(Client &c)
{
    while (c.out_pos < c.out.size()) {
        const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return watch(c, true);
        if (n < 0) {
            c.dead = true;  // the client is gone
            return;
        }
        c.out_pos += static_cast<size_t>(n);
    }
    c.out.clear();
    c.out_pos = 0;
    watch(c, false);
    if (c.closing || (c.eof && c.pending == 0 && !c.monitor))
        c.dead = true;
}

// Watches for writability while output waits; stops reading a client that
// will send nothing more (its EOF would keep the fd readable).
void Server::State::watch(Client &c, bool out)
{
    if (out == c.writing && !c.eof)
        return;
    epoll_event ev{};
    ev.events = (c.eof ? 0u : static_cast<uint32_t>(EPOLLIN)) | (out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    ev.data.u64 = c.id;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    c.writing = out;
}

void Server::State::sweep()
{
    if (busy)
        return;
    for (auto it = clients.begin(); it != clients.end();)
        it = it->second.dead ? clients.erase(it) : std::next(it);
}

}  // namespace devhost::control
