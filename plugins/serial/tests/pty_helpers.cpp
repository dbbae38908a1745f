#include "pty_helpers.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdexcept>
#include <unistd.h>

namespace serial_test {

using namespace devhost;
using namespace devhost::test;

Pty::Pty()
{
    char name[128];
    if (openpty(&master, &slave, name, nullptr, nullptr) != 0)
        throw std::runtime_error("openpty failed");
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    path = name;
}

Pty::~Pty()
{
    close_master();
    close_slave();
}

void Pty::close_master()
{
    if (master >= 0)
        ::close(master);
    master = -1;
}

void Pty::close_slave()
{
    if (slave >= 0)
        ::close(slave);
    slave = -1;
}

void Pty::send(const std::string &bytes) const
{
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(master, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw std::runtime_error("writing to the pty master failed");
        done += size_t(n);
    }
}

std::string Pty::receive(size_t n, int ms) const
{
    std::string got;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < n) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        struct pollfd p = {master, POLLIN, 0};
        if (poll(&p, 1, int(left.count())) <= 0)
            break;
        char buf[4096];
        ssize_t r = ::read(master, buf, sizeof buf);
        if (r <= 0)
            break;
        got.append(buf, size_t(r));
    }
    return got;
}

std::shared_ptr<const Plugin> serial_plugin()
{
    static PluginRegistry registry;
    static std::shared_ptr<const Plugin> plugin = registry.load_file(plugin_dir() / "serial.so");
    REQUIRE(plugin);
    return plugin;
}

Result write(Device &dev, const std::string &bytes, int32_t timeout_ms)
{
    devhost_transfer x{};
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = timeout_ms;
    x.out = reinterpret_cast<const uint8_t *>(bytes.data());
    x.out_len = bytes.size();
    Result r;
    r.outcome = dev.transfer(x);
    r.out_done = x.out_done;
    return r;
}

Result read(Device &dev, uint32_t op, size_t capacity, int32_t timeout_ms, const std::string &delimiter)
{
    std::string buf(capacity, '\0');
    devhost_transfer x{};
    x.op = op;
    x.timeout_ms = timeout_ms;
    x.in = reinterpret_cast<uint8_t *>(buf.data());
    x.in_capacity = capacity;
    if (!delimiter.empty()) {
        x.delimiter = reinterpret_cast<const uint8_t *>(delimiter.data());
        x.delimiter_len = delimiter.size();
    }
    Result r;
    r.outcome = dev.transfer(x);
    r.data = buf.substr(0, x.in_len);
    return r;
}

Result request(Device &dev, const std::string &bytes, const std::string &delimiter, int32_t timeout_ms,
               size_t capacity)
{
    std::string buf(capacity, '\0');
    devhost_transfer x{};
    x.op = DEVHOST_OP_REQUEST;
    x.timeout_ms = timeout_ms;
    x.out = reinterpret_cast<const uint8_t *>(bytes.data());
    x.out_len = bytes.size();
    x.in = reinterpret_cast<uint8_t *>(buf.data());
    x.in_capacity = capacity;
    x.delimiter = reinterpret_cast<const uint8_t *>(delimiter.data());
    x.delimiter_len = delimiter.size();
    Result r;
    r.outcome = dev.transfer(x);
    r.data = buf.substr(0, x.in_len);
    r.out_done = x.out_done;
    return r;
}

Result control(Device &dev, const std::string &name, const std::string &input)
{
    const ControlSpec *spec = dev.plugin().find_control(name);
    REQUIRE(spec);
    std::string buf(256, '\0');
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.timeout_ms = 2000;
    x.control_code = spec->code;
    x.out = reinterpret_cast<const uint8_t *>(input.data());
    x.out_len = input.size();
    x.in = reinterpret_cast<uint8_t *>(buf.data());
    x.in_capacity = buf.size();
    Result r;
    r.outcome = dev.transfer(x);
    r.data = buf.substr(0, x.in_len);
    return r;
}

std::string info_value(Device &dev, const std::string &key)
{
    InfoList list;
    Outcome o = dev.info(list);
    REQUIRE(o.ok());
    for (const auto &[k, v] : list)
        if (k == key)
            return v;
    return "<missing " + key + ">";
}

std::string start_vdev(std::unique_ptr<Child> &child, const TempDir &dir, const std::string &kind,
                       const std::vector<std::string> &args)
{
    std::string link = (dir / (kind + ".link")).string();
    std::vector<std::string> argv = {(bin_dir() / "devhost-vdev").string(), kind, "--name=" + kind, "--link=" + link};
    argv.insert(argv.end(), args.begin(), args.end());
    child = std::make_unique<Child>(argv, dir.path());
    INFO("vdev stderr: " << child->err());
    REQUIRE(child->wait_for_output("READY " + link, std::chrono::seconds(10)));
    return link;
}

}  // namespace serial_test
