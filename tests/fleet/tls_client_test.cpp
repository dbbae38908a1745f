// [mqtt] cert-file and key-file (issue 16): TLS with a client certificate
// against a real broker. The test makes a CA, the broker's certificate and
// client certificates with the openssl command, and starts Debian's
// mosquitto with a TLS listener that requires a client certificate of that
// CA. serve with one publishes its birth; serve without one, or with one
// of another CA, is refused in the handshake and logs why. The key file is
// checked like the password file: devhost check refuses one others may
// read or another user owns.
#include "fleet_fixture.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string base = "devhost/g1/";

std::string config(const TempDir &dir, int port, const std::string &node, const std::string &client)
{
    const std::string d = dir.path().string();
    return "[host]\ncontrol-socket = " + (dir / (node + ".sock")).string() +
           "\n[mqtt]\nbroker = mqtts://localhost:" + std::to_string(port) + "\nca-file = " + d + "/ca.pem\n" +
           client + "group = g1\nnode = " + node +
           "\nkeepalive = 5s\n"
           "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nbody = read exactly=2\n"
           "teardown = close\nrun = every 200ms\n";
}

std::string client_keys(const TempDir &dir, const std::string &name)
{
    const std::string d = dir.path().string();
    return "cert-file = " + d + "/" + name + ".pem\nkey-file = " + d + "/" + name + ".key\n";
}

// The broker: TLS only, a client certificate of ca.pem required.
std::unique_ptr<Broker> tls_broker(const TempDir &dir)
{
    const std::string d = dir.path().string();
    return std::make_unique<Broker>(dir.path(), 0,
                                    "cafile " + d + "/ca.pem\ncertfile " + d + "/server.pem\nkeyfile " + d +
                                        "/server.key\nrequire_certificate true\nallow_anonymous true\n");
}

std::string openssl_missing()
{
    return ::access("/usr/bin/openssl", X_OK) == 0 ? "" : "needs /usr/bin/openssl (apt-get install openssl)";
}

}  // namespace

TEST_CASE("mqtts with a client certificate publishes its birth")
{
    if (const std::string why = broker_missing() + openssl_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    REQUIRE(make_certificates(dir.path()));
    REQUIRE(make_client_certificate(dir.path(), "ca", "client"));
    REQUIRE(make_client_certificate(dir.path(), "ca", "watcher"));
    auto broker = tls_broker(dir);
    const std::string d = dir.path().string();
    Subscriber sub(dir.path(), *broker, "devhost/#",
                   {"--cafile", d + "/ca.pem", "--cert", d + "/watcher.pem", "--key", d + "/watcher.key"});
    write_file(dir / "n1.ini", config(dir, broker->port(), "n1", client_keys(dir, "client")));
    const ProcessResult check = run_devhost({"check", (dir / "n1.ini").string()});
    INFO(check.err);
    CHECK(check.exit_code == 0);
    auto devhost = start_serve(dir, "n1");
    INFO(devhost->err());
    REQUIRE(sub.wait([](const auto &seen) { return count(seen, base + "DDATA/n1/a") >= 2; }, 20s));
    const auto seen = sub.messages();
    CHECK(seen[0].topic == base + "NBIRTH/n1");
    CHECK(json::parse(seen[0].payload)["online"] == true);
    CHECK(devhost->err().find("mqtt: connected to localhost:" + std::to_string(broker->port()) + " as node n1") !=
          std::string::npos);
}

TEST_CASE("mqtts without a client certificate of the CA is refused and says why")
{
    if (const std::string why = broker_missing() + openssl_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    REQUIRE(make_certificates(dir.path()));
    REQUIRE(make_client_certificate(dir.path(), "ca", "watcher"));
    // Another CA, and a client certificate of it.
    fs::create_directory(dir / "other");
    REQUIRE(make_certificates(dir / "other"));
    REQUIRE(make_client_certificate(dir / "other", "ca", "stranger"));
    auto broker = tls_broker(dir);
    const std::string d = dir.path().string();
    Subscriber sub(dir.path(), *broker, "devhost/#",
                   {"--cafile", d + "/ca.pem", "--cert", d + "/watcher.pem", "--key", d + "/watcher.key"});
    write_file(dir / "n2.ini", config(dir, broker->port(), "n2", ""));
    write_file(dir / "n3.ini", config(dir, broker->port(), "n3",
                                      "cert-file = " + d + "/other/stranger.pem\nkey-file = " + d +
                                          "/other/stranger.key\n"));
    auto none = start_serve(dir, "n2");
    auto stranger = start_serve(dir, "n3");
    const std::string port = std::to_string(broker->port());
    // The broker's alert, as OpenSSL names it, then the retries.
    CHECK(none->wait_for_output("alert certificate required", 15s));
    CHECK(none->wait_for_output("mqtt: localhost:" + port + ": ", 15s));
    CHECK(stranger->wait_for_output("alert unknown ca", 15s));
    CHECK(stranger->wait_for_output("worker class loop started", 10s));  // serving goes on
    INFO(none->err());
    INFO(stranger->err());
    INFO(broker->log());
    std::this_thread::sleep_for(1s);
    CHECK(count(sub.messages(), base + "NBIRTH/n2") == 0);
    CHECK(count(sub.messages(), base + "NBIRTH/n3") == 0);
    CHECK(none->err().find("mqtt: connected") == std::string::npos);
    CHECK(stranger->err().find("mqtt: connected") == std::string::npos);
}

TEST_CASE("a key file others may read or another user owns is refused")
{
    if (const std::string why = openssl_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    REQUIRE(make_certificates(dir.path()));
    REQUIRE(make_client_certificate(dir.path(), "ca", "client"));
    const fs::path key = dir / "client.key";
    write_file(dir / "n1.ini", config(dir, 8883, "n1", client_keys(dir, "client")));
    const std::string ini = (dir / "n1.ini").string();
    const std::string where = ini + ":7: [mqtt] key-file: key file '" + key.string() + "'";

    REQUIRE(::chmod(key.c_str(), 0644) == 0);
    ProcessResult r = run_devhost({"check", ini});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "devhost: error: " + where + " has mode 0644: others may read it (chmod 600 it)\n");
    // serve refuses it the same way, before it starts anything.
    r = run_devhost({"serve", "--socket", (dir / "s.control").string(), ini}, {.timeout = 20s});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(where + " has mode 0644") != std::string::npos);

    REQUIRE(::chmod(key.c_str(), 0600) == 0);
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to give the key file to another user (chown)");
    REQUIRE(::chown(key.c_str(), 65534, 65534) == 0);
    r = run_devhost({"check", ini});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "devhost: error: " + where + " is owned by uid 65534: it must be root's\n");
    // A symbolic link to a good key file is not followed.
    REQUIRE(::chown(key.c_str(), 0, 0) == 0);
    fs::create_symlink(key, dir / "link.key");
    write_file(dir / "n1.ini", config(dir, 8883, "n1",
                                      "cert-file = " + (dir / "client.pem").string() +
                                          "\nkey-file = " + (dir / "link.key").string() + "\n"));
    r = run_devhost({"check", ini});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("[mqtt] key-file: cannot open key file '" + (dir / "link.key").string() +
                     "': Too many levels of symbolic links") != std::string::npos);
}

TEST_CASE("an encrypted key file fails to load, logged, and serve serves on")
{
    if (const std::string why = broker_missing() + openssl_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    REQUIRE(make_certificates(dir.path()));
    REQUIRE(make_client_certificate(dir.path(), "ca", "client"));
    // The same key, encrypted with a passphrase serve is never given.
    const std::string d = dir.path().string();
    REQUIRE(run_process({"/usr/bin/openssl", "pkey", "-in", d + "/client.key", "-aes256", "-passout", "pass:s3cret",
                         "-out", d + "/locked.key"})
                .exit_code == 0);
    REQUIRE(::chmod((dir / "locked.key").c_str(), 0600) == 0);
    auto broker = tls_broker(dir);
    write_file(dir / "n4.ini", config(dir, broker->port(), "n4",
                                      "cert-file = " + d + "/client.pem\nkey-file = " + d + "/locked.key\n"));
    auto devhost = start_serve(dir, "n4");
    CHECK(devhost->wait_for_output("mqtt: Error: Unable to load client key file", 15s));
    CHECK(devhost->wait_for_output("worker class loop started", 10s));
    INFO(devhost->err());
    // Named as configured, not by the descriptor OpenSSL was given.
    CHECK(devhost->err().find(d + "/locked.key") != std::string::npos);
    CHECK(devhost->err().find("/proc/self/fd/") == std::string::npos);
    CHECK(devhost->err().find("mqtt: connected") == std::string::npos);
}
