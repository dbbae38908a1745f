#include "broker.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace devhost::test {

namespace {

const char *const mosquitto_bin = "/usr/sbin/mosquitto";
const char *const sub_bin = "/usr/bin/mosquitto_sub";
const char *const pub_bin = "/usr/bin/mosquitto_pub";
const char *const probe_topic = "devhost-test/probe";

bool accepts(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    if (fd >= 0)
        ::close(fd);
    return ok;
}

}  // namespace

std::string broker_missing()
{
    for (const char *bin : {mosquitto_bin, sub_bin, pub_bin})
        if (::access(bin, X_OK) != 0)
            return std::string("needs ") + bin + " (apt-get install mosquitto mosquitto-clients)";
    return "";
}

int free_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0)
        throw std::runtime_error("no free port");
    ::close(fd);
    return ntohs(addr.sin_port);
}

Broker::Broker(const fs::path &dir, int port, const std::string &listener) : dir_(dir), port_(port ? port : free_port())
{
    const fs::path conf = dir / ("mosquitto-" + std::to_string(port_) + ".conf");
    write_file(conf, "listener " + std::to_string(port_) + " 127.0.0.1\n" +
                         (listener.empty() ? "allow_anonymous true\n" : listener) +
                         // a listener that asks for persistence has it (Broker::stop saves it)
                         (listener.find("persistence true") == std::string::npos ? "persistence false\n" : "") +
                         "log_dest stderr\n" +  // unbuffered: Broker::log reads it as it comes
                         // as root it would drop to user mosquitto, who cannot read the test's files
                         std::string(::geteuid() == 0 ? "user root\n" : ""));
    process_ = std::make_unique<Child>(std::vector<std::string>{mosquitto_bin, "-c", conf.string()}, dir);
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!accepts(port_)) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("mosquitto did not listen on port " + std::to_string(port_) +
                                     " within 5 s: " + process_->err());
        std::this_thread::sleep_for(20ms);
    }
}

std::string Broker::log() const { return process_ ? process_->err() : ""; }

void Broker::kill()
{
    process_.reset();  // SIGKILL and wait
}

void Broker::stop()
{
    process_->signal(SIGTERM);
    process_->wait(10s);
    process_.reset();  // SIGKILL and wait, if it did not end
}

Subscriber::Subscriber(const fs::path &dir, const Broker &broker, const std::string &topic,
                       const std::vector<std::string> &options, const std::vector<std::string> &sub_options)
{
    const std::string port = std::to_string(broker.port());
    std::vector<std::string> common{"-h", "127.0.0.1", "-p", port};
    common.insert(common.end(), options.begin(), options.end());
    std::vector<std::string> argv{sub_bin, "-v", "-t", topic, "-t", probe_topic};
    argv.insert(argv.begin() + 1, common.begin(), common.end());
    argv.insert(argv.end(), sub_options.begin(), sub_options.end());
    process_ = std::make_unique<Child>(argv, dir);
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (process_->out().find(probe_topic) == std::string::npos) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("mosquitto_sub did not subscribe within 5 s: " + process_->err());
        std::vector<std::string> pub{pub_bin, "-t", probe_topic, "-m", "probe"};
        pub.insert(pub.begin() + 1, common.begin(), common.end());
        run_process(pub, {2s});
        std::this_thread::sleep_for(50ms);
    }
}

bool make_certificates(const fs::path &dir)
{
    const auto ok = [](const std::vector<std::string> &argv) { return run_process(argv, {30s}).exit_code == 0; };
    const std::string d = dir.string();
    write_file(dir / "san.cnf", "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
    return ok({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
               "/CN=devhost test CA", "-keyout", d + "/ca.key", "-out", d + "/ca.pem"}) &&
           ok({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
               d + "/server.key", "-out", d + "/server.csr"}) &&
           ok({"/usr/bin/openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey",
               d + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", d + "/san.cnf", "-out",
               d + "/server.pem"});
}

bool make_client_certificate(const fs::path &dir, const std::string &ca, const std::string &name)
{
    const auto ok = [](const std::vector<std::string> &argv) { return run_process(argv, {30s}).exit_code == 0; };
    const std::string d = dir.string() + "/";
    write_file(dir / "client.cnf", "extendedKeyUsage = clientAuth\n");
    return ok({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-keyout",
               d + name + ".key", "-out", d + name + ".csr"}) &&
           ok({"/usr/bin/openssl", "x509", "-req", "-in", d + name + ".csr", "-CA", d + ca + ".pem", "-CAkey",
               d + ca + ".key", "-CAcreateserial", "-days", "2", "-extfile", d + "client.cnf", "-out",
               d + name + ".pem"}) &&
           ::chmod((d + name + ".key").c_str(), 0600) == 0;
}

std::vector<Seen> Subscriber::messages() const
{
    std::vector<Seen> out;
    std::string text = process_->out();
    text = text.substr(0, text.rfind('\n') + 1);  // a line still being written is not seen yet
    for (const auto &line : lines(text)) {
        const size_t space = line.find(' ');
        Seen s{line.substr(0, space), space == std::string::npos ? "" : line.substr(space + 1)};
        if (s.topic != probe_topic)
            out.push_back(std::move(s));
    }
    return out;
}

bool Subscriber::wait(const std::function<bool(const std::vector<Seen> &)> &pred, std::chrono::milliseconds timeout)
{
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred(messages()))
            return true;
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(20ms);
    }
}

}  // namespace devhost::test
