// Helpers for the serial tests: a real kernel pty, the serial plugin loaded
// through the host's loader, and short-hands for transfers.
#pragma once

#include "devhost_test.hpp"
#include "device.hpp"
#include "loader.hpp"

#include <memory>
#include <string>

namespace serial_test {

// A pty pair made with openpty(); both fds close-on-exec. `path` is the
// slave's /dev/pts/N. The slave fd stays open (so the tty outlives a
// device's close) unless close_slave() is called.
struct Pty {
    Pty();
    ~Pty();
    Pty(const Pty &) = delete;
    Pty &operator=(const Pty &) = delete;
    void close_master();
    void close_slave();
    // Writes all of `bytes` to the master.
    void send(const std::string &bytes) const;
    // Reads what the device wrote, waiting up to `ms` for at least `n` bytes.
    std::string receive(size_t n, int ms = 2000) const;
    int master = -1;
    int slave = -1;
    std::string path;
};

std::shared_ptr<const devhost::Plugin> serial_plugin();

struct Result {
    devhost::Outcome outcome;
    std::string data;  // bytes read (in[0..in_len))
    size_t out_done = 0;
};

Result write(devhost::Device &dev, const std::string &bytes, int32_t timeout_ms = 2000);
Result read(devhost::Device &dev, uint32_t op, size_t capacity, int32_t timeout_ms = 2000,
            const std::string &delimiter = {});
Result request(devhost::Device &dev, const std::string &bytes, const std::string &delimiter,
               int32_t timeout_ms = 2000, size_t capacity = 256);
Result control(devhost::Device &dev, const std::string &name, const std::string &input = {});
std::string info_value(devhost::Device &dev, const std::string &key);

// Starts devhost-vdev KIND with --link=<dir>/NAME and waits for READY.
// Returns the link path; the Child is stored in `child`.
std::string start_vdev(std::unique_ptr<devhost::test::Child> &child, const devhost::test::TempDir &dir,
                       const std::string &kind, const std::vector<std::string> &args = {});

}  // namespace serial_test
