// [mqtt] in-process (issue 16): the section's values and mistakes
// (mqtt_config.hpp), the password file checked by descriptor against real
// files (a link, a readable mode, another owner), and the messages
// FleetState makes of the serve loop's events (mqtt_sparkplug.hpp).
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "mqtt_config.hpp"
#include "mqtt_sparkplug.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string device = "[device a]\nclass = loop\npath = loop:a\nstep = open\n";

Config parsed(const std::string &mqtt, std::vector<std::string> &errors)
{
    std::vector<Diagnostic> diags;
    Config c = parse_config("[mqtt]\n" + mqtt + device, "test.ini", diags);
    for (const auto &d : diags)
        errors.push_back(d.str());
    return c;
}

std::vector<std::string> check_errors(const Config &config)
{
    std::vector<Diagnostic> diags;
    check_mqtt(config, diags);
    std::vector<std::string> out;
    for (const auto &d : diags)
        out.push_back(d.str());
    return out;
}

}  // namespace

TEST_CASE("mqtt config reads every key with defaults where unset")
{
    std::vector<std::string> errors;
    Config c = parsed("broker = mqtts://broker.example:8884/\nclient-id = plant-7\ngroup = site1\nnode = pc7\n"
                      "topic-prefix = acme/devhost\nqos = 2\nkeepalive = 1m\nusername = pc7\n"
                      "password-file = /etc/devhost/mqtt.pass\nca-file = /etc/devhost/ca.pem\n"
                      "allow-commands = call, rebirth\n",
                      errors);
    CHECK(errors.empty());
    const MqttSettings &m = c.mqtt;
    CHECK(m.enabled);
    CHECK(m.tls);
    CHECK(m.host == "broker.example");
    CHECK(m.port == 8884);
    CHECK(*m.client_id == "plant-7");
    CHECK(m.group == "site1");
    CHECK(*m.node == "pc7");
    CHECK(m.prefix == "acme/devhost");
    CHECK(m.qos == 2);
    CHECK(m.keepalive_s == 60);
    CHECK(*m.username == "pc7");
    CHECK(*m.password_file == "/etc/devhost/mqtt.pass");
    CHECK(*m.ca_file == "/etc/devhost/ca.pem");
    CHECK(m.allow_commands == std::vector<std::string>{"call", "rebirth"});

    errors.clear();
    Config d = parsed("broker = mqtt://[::1]\n", errors);
    CHECK(errors.empty());
    CHECK(d.mqtt.host == "::1");
    CHECK(d.mqtt.port == 1883);
    CHECK(!d.mqtt.tls);
    CHECK(d.mqtt.group == "devhost");
    CHECK(d.mqtt.prefix == "devhost");
    CHECK(d.mqtt.qos == 1);
    CHECK(d.mqtt.keepalive_s == 30);
    CHECK(mqtt_client_id(d.mqtt).rfind("devhost-", 0) == 0);
    CHECK(mqtt_client_id(d.mqtt).size() > 8);

    std::vector<Diagnostic> diags;
    CHECK(!parse_config(device, "test.ini", diags).mqtt.enabled);  // no section: no publisher
}

TEST_CASE("mqtt config errors are one line naming file line and key")
{
    std::vector<std::string> errors;
    parsed("broker = tcp://h\nqos = 3\nkeepalive = 2s\ngroup = a/b\nnode = n+1\ntopic-prefix = $SYS\n"
           "allow-commands = call delete\nbrokr = x\nca-file = ca.pem\nqos = 1\n",
           errors);
    REQUIRE(errors.size() == 10);
    CHECK(errors[0] == "test.ini:2: [mqtt] broker: unknown scheme (expected mqtt://HOST[:PORT] or "
                       "mqtts://HOST[:PORT]), got 'tcp://h'");
    CHECK(errors[1] == "test.ini:3: [mqtt] qos: expected 0, 1 or 2, got '3'");
    CHECK(errors[2] == "test.ini:4: [mqtt] keepalive: expected whole seconds from 5s to 65535s, like 30s, got '2s'");
    CHECK(errors[3] == "test.ini:5: [mqtt] group: expected a group name, got 'a/b': has a '/' (MQTT topic syntax)");
    CHECK(errors[4] == "test.ini:6: [mqtt] node: expected a node name, got 'n+1': has a '+' (MQTT topic syntax)");
    CHECK(errors[5] == "test.ini:7: [mqtt] topic-prefix: expected a prefix not starting with '$' (the broker's own "
                       "topics), got '$SYS'");
    CHECK(errors[6] == "test.ini:8: [mqtt] allow-commands: expected call, reset or rebirth, got 'delete'");
    CHECK(errors[7] == "test.ini:9: [mqtt] brokr: unknown key (did you mean 'broker'?)");
    CHECK(errors[8] == "test.ini:10: [mqtt] ca-file: expected an absolute file path, got 'ca.pem'");
    CHECK(errors[9] == "test.ini:11: [mqtt] qos: given twice (first on line 3)");
}

TEST_CASE("mqtt config refuses bad broker URLs")
{
    for (const auto &[url, why] : std::vector<std::pair<std::string, std::string>>{
             {"mqtt://user:pw@h", "no user or password in the URL: use username and password-file"},
             {"mqtt://h:0", "a port from 1 to 65535"},
             {"mqtt://h:99999", "a port from 1 to 65535"},
             {"mqtt://h:", "a port from 1 to 65535"},
             {"mqtt://", "no host"},
             {"mqtt://h/topic", "no path, query or space"},
             {"mqtt://[::1", "an unclosed '['"}}) {
        std::vector<std::string> errors;
        parsed("broker = " + url + "\n", errors);
        INFO(url);
        REQUIRE(errors.size() == 1);
        CHECK(errors[0] == "test.ini:2: [mqtt] broker: " + why +
                               " (expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]), got '" + url + "'");
    }
}

TEST_CASE("mqtt config needs a broker and username with password-file")
{
    std::vector<std::string> errors;
    parsed("group = g\n", errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == "test.ini:2: [mqtt]: missing 'broker = mqtt://HOST[:PORT]'");
    errors.clear();
    parsed("broker = mqtt://h\nca-file = /ca.pem\nusername = u\n", errors);
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "test.ini:3: [mqtt] ca-file: a CA file is for an mqtts:// broker; broker is 'mqtt://h'");
    CHECK(errors[1] == "test.ini:4: [mqtt] username: needs 'password-file = ...' (no password in the config: it is "
                       "readable by more than root)");
    errors.clear();
    parsed("broker = mqtt://h\npassword-file = /p\n", errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == "test.ini:3: [mqtt] password-file: needs 'username = ...'");
}

TEST_CASE("mqtt password file is checked on its descriptor")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to give the password file to another owner");
    TempDir dir;
    const fs::path good = dir / "good.pass", loose = dir / "loose.pass", theirs = dir / "theirs.pass",
                   link = dir / "link.pass", empty = dir / "empty.pass";
    for (const auto &f : {good, loose, theirs, empty}) {
        write_file(f, f == empty ? "" : "s3cret\nignored\n");
        ::chmod(f.c_str(), 0600);
    }
    ::chmod(loose.c_str(), 0640);
    REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
    fs::create_symlink(good, link);
    std::string error;
    CHECK(read_password_file(good.string(), error) == "s3cret");
    CHECK(!read_password_file(loose.string(), error));
    CHECK(error == "password file '" + loose.string() + "' has mode 0640: others may read it (chmod 600 it)");
    CHECK(!read_password_file(theirs.string(), error));
    CHECK(error == "password file '" + theirs.string() + "' is owned by uid 65534: it must be root's");
    // devhost as another user accepts its own files too, and says so.
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod(theirs.c_str(), 0644) == 0);
    CHECK(in_child([&] {
              if (::seteuid(1000) != 0)
                  return std::string("seteuid failed");
              std::string why;
              return read_password_file(theirs.string(), why) ? std::string("accepted") : why;
          }) == "password file '" + theirs.string() + "' is owned by uid 65534: it must be root's or devhost's own (uid 1000)");
    const fs::path mine = dir / "mine.pass";
    write_file(mine, "s3cret\n");
    REQUIRE(::chmod(mine.c_str(), 0600) == 0);
    REQUIRE(::chown(mine.c_str(), 1000, 1000) == 0);
    CHECK(in_child([&] {
              if (::seteuid(1000) != 0)
                  return std::string("seteuid failed");
              std::string why;
              const auto password = read_password_file(mine.string(), why);
              return password ? "accepted: " + *password : why;
          }) == "accepted: s3cret");
    CHECK(!read_password_file(link.string(), error));  // O_NOFOLLOW: not followed
    CHECK(error == "cannot open password file '" + link.string() + "': Too many levels of symbolic links");
    CHECK(!read_password_file(empty.string(), error));
    CHECK(error == "password file '" + empty.string() + "' is empty (its first line is the password)");
    CHECK(!read_password_file(dir.path().string(), error));
    CHECK(error == "password file '" + dir.path().string() + "' is not a regular file");

    // devhost check reports it on the key's line.
    std::vector<std::string> errors;
    Config c = parsed("broker = mqtt://h\nusername = u\npassword-file = " + loose.string() + "\n", errors);
    CHECK(errors.empty());
    const auto checked = check_errors(c);
    REQUIRE(checked.size() == 1);
    CHECK(checked[0] == "test.ini:4: [mqtt] password-file: password file '" + loose.string() +
                            "' has mode 0640: others may read it (chmod 600 it)");
}

TEST_CASE("mqtt check refuses device names that are no topic level")
{
    std::vector<Diagnostic> diags;
    Config c = parse_config("[mqtt]\nbroker = mqtt://h\nnode = n\n[device a+b]\nclass = loop\npath = loop:a\n"
                            "step = open\n",
                            "test.ini", diags);
    CHECK(diags.empty());
    const auto checked = check_errors(c);
    REQUIRE(checked.size() == 1);
    CHECK(checked[0] ==
          "test.ini:4: [device a+b]: its name has a '+' (MQTT topic syntax), so it cannot be a topic level of [mqtt]");
}

TEST_CASE("mqtt CA file is checked like a plugin: only root may change it or its directories")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to give the CA file and its directory to another owner");
    TempDir dir;
    const fs::path good = dir / "ca.pem", open_to_all = dir / "open.pem", sub = dir / "theirs",
                   in_theirs = dir / "theirs" / "ca.pem";
    fs::create_directories(sub);
    for (const auto &f : {good, open_to_all, in_theirs})
        write_file(f, "-----BEGIN CERTIFICATE-----\n");
    REQUIRE(::chmod(good.c_str(), 0644) == 0);
    REQUIRE(::chmod(open_to_all.c_str(), 0666) == 0);
    REQUIRE(::chmod(in_theirs.c_str(), 0644) == 0);
    REQUIRE(::chown(sub.c_str(), 65534, 65534) == 0);
    std::string error;
    CHECK(open_ca_file(good.string(), error));
    CHECK(!open_ca_file(open_to_all.string(), error));
    CHECK(error == "CA file '" + open_to_all.string() +
                       "' has mode 0666: others may change it, and with it which brokers devhost trusts");
    CHECK(!open_ca_file(in_theirs.string(), error));
    CHECK(error == "the directory '" + sub.string() + "' of CA file '" + in_theirs.string() +
                       "' is owned by uid 65534: it must be root's");
    CHECK(!open_ca_file((dir / "none.pem").string(), error));
    CHECK(error == "cannot open CA file '" + (dir / "none.pem").string() + "': No such file or directory");

    // devhost check reports it on the key's line.
    std::vector<std::string> errors;
    Config c = parsed("broker = mqtts://h\nca-file = " + open_to_all.string() + "\n", errors);
    CHECK(errors.empty());
    const auto checked = check_errors(c);
    REQUIRE(checked.size() == 1);
    CHECK(checked[0] == "test.ini:3: [mqtt] ca-file: CA file '" + open_to_all.string() +
                            "' has mode 0666: others may change it, and with it which brokers devhost trusts");
}

TEST_CASE("fleet state makes births data and deaths with seq from 0")
{
    FleetState s("devhost", "g", "n", "9.9");
    const auto state = [](const std::string &st, int gen) {
        return json{{"event", "state"}, {"device", "a"},      {"state", st},
                    {"generation", gen}, {"message", ""}, {"class", "loop"}, {"path", "loop:a"}};
    };
    // Before a connection: the table only.
    CHECK(s.event(state("setup", 0), 1, false).empty());
    auto births = s.births(7, 100);
    REQUIRE(births.size() == 2);
    CHECK(births[0].topic == "devhost/g/NBIRTH/n");
    CHECK(births[0].retain);
    const json nb = json::parse(births[0].payload);
    CHECK(nb["seq"] == 0);
    CHECK(nb["bdSeq"] == 7);
    CHECK(nb["devices"][0] == json{{"device", "a"}, {"class", "loop"}, {"path", "loop:a"},
                                   {"generation", 0}, {"state", "setup"}, {"message", ""}});
    CHECK(births[1].topic == "devhost/g/DBIRTH/n/a");
    CHECK(json::parse(births[1].payload)["seq"] == 1);
    // A state change: DDATA; to failed: DDEATH; back: DBIRTH.
    auto m = s.event(state("idle", 1), 200, true);
    REQUIRE(m.size() == 1);
    CHECK(m[0].topic == "devhost/g/DDATA/n/a");
    CHECK(!m[0].retain);
    CHECK(json::parse(m[0].payload) == json{{"timestamp", 200}, {"seq", 2}, {"event", "state"}, {"device", "a"},
                                             {"state", "idle"}, {"generation", 1}, {"message", ""}});
    m = s.event(state("failed", 1), 300, true);
    REQUIRE(m.size() == 1);
    CHECK(m[0].topic == "devhost/g/DDEATH/n/a");
    CHECK(m[0].retain);
    CHECK(json::parse(m[0].payload)["seq"] == 3);
    m = s.event(state("setup", 2), 400, true);
    REQUIRE(m.size() == 1);
    CHECK(m[0].topic == "devhost/g/DBIRTH/n/a");
    // A record: DDATA with the record whole and its generation.
    const json rec = {{"device", "a"}, {"step", "open"}, {"generation", 2}, {"status", "DEVHOST_OK"}};
    m = s.event({{"event", "record"}, {"record", rec}}, 500, true);
    REQUIRE(m.size() == 1);
    CHECK(json::parse(m[0].payload) == json{{"timestamp", 500}, {"seq", 5}, {"event", "record"}, {"device", "a"},
                                             {"generation", 2}, {"record", rec}});
    // The will has no seq; the death on a clean stop has.
    CHECK(json::parse(s.will(7).payload) == json{{"bdSeq", 7}, {"online", false}});
    CHECK(json::parse(s.death(7, 600).payload)["seq"] == 6);
    // A new session starts again from 0, a dead device's DDEATH after its birth.
    s.event(state("stale", 2), 700, true);
    births = s.births(8, 800);
    REQUIRE(births.size() == 3);
    CHECK(births[2].topic == "devhost/g/DDEATH/n/a");
    CHECK(json::parse(births[2].payload)["seq"] == 2);
    // Removed by a reload: its death, then nothing of it, and no birth.
    m = s.event({{"event", "removed"}, {"device", "a"}}, 900, true);
    REQUIRE(m.size() == 1);
    CHECK(m[0].topic == "devhost/g/DDEATH/n/a");
    CHECK(json::parse(m[0].payload)["state"] == "removed");
    CHECK(json::parse(m[0].payload)["seq"] == 3);
    CHECK(s.event({{"event", "record"}, {"record", rec}}, 950, true).empty());
    CHECK(s.event(state("idle", 2), 960, true).empty());  // its teardown
    births = s.births(9, 1000);
    REQUIRE(births.size() == 1);
    CHECK(json::parse(births[0].payload)["devices"].empty());
    // Added again by a later reload: born again.
    CHECK(s.event({{"event", "added"}, {"device", "a"}}, 1100, true).empty());
    m = s.event(state("setup", 0), 1200, true);
    REQUIRE(m.size() == 1);
    CHECK(m[0].topic == "devhost/g/DBIRTH/n/a");
}
