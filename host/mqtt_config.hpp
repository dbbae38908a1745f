// The [mqtt] section (issue 16, "Fleet"): where `devhost serve` publishes
// its devices' births, state changes and step records (mqtt_publisher.hpp).
//
//   broker = mqtt://HOST[:PORT] | mqtts://HOST[:PORT]   (required; ports
//                    1883 and 8883 by default; [v6 address] in brackets)
//   protocol = 3.1.1|5  the MQTT version spoken (default: 3.1.1)
//   client-id = ID   default: devhost- and /etc/machine-id
//   group = NAME     the Sparkplug group (default: devhost)
//   node = NAME      the node's name (default: the host name)
//   topic-prefix = P the topics' first levels (default: devhost)
//   qos = 0|1|2      every message's QoS (default: 1)
//   keepalive = D    5s to 65535s (default: 30s)
//   username = NAME  with password-file
//   password-file = /ABS   its first line is the password; owned by root
//                    (or the user devhost runs as), no group or other
//                    permission bits: checked on the open descriptor
//   ca-file = /ABS   the CA certificates an mqtts:// broker is checked
//                    against (default: the system's)
//   cert-file = /ABS the client certificate (PEM) shown to an mqtts://
//                    broker, with key-file
//   key-file = /ABS  its private key (PEM, not encrypted): checked like
//                    password-file, and handed to libmosquitto as
//                    /proc/self/fd/N of the checked descriptor
//   spool-max-bytes = N[K|M|G]   the spool's bound in bytes (default 64M;
//                    4K to 1024G): over it, the oldest are dropped
//   spool-max-age = D  how long a message may wait there (default 7d; 1s
//                    to 3650d); older ones are dropped (mqtt_spool.hpp)
//   allow-commands = WORDS   call, reset, rebirth: the commands from the
//                    fleet that are run (mqtt_commands.hpp); default none
//
// Parsing checks each value's form (config.cpp files the entries here);
// check_mqtt (devhost check, serve) checks what needs the file system.
#pragma once

#include <devhost/unique_fd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devhost {

struct Config;
struct Diagnostic;

struct MqttSettings {
    bool enabled = false;  // the config has an [mqtt] section
    int line = 0;          // its first entry
    std::string broker;    // as written
    int broker_line = 0;
    bool mqtt5 = false;    // protocol = 5 (else 3.1.1)
    bool tls = false;      // mqtts://
    std::string host;
    int port = 0;
    std::optional<std::string> client_id;  // unset: devhost-MACHINE-ID
    std::string group = "devhost";
    std::optional<std::string> node;  // unset: the host name
    int node_line = 0;
    std::string prefix = "devhost";
    int qos = 1;
    int keepalive_s = 30;
    std::optional<std::string> username;
    int username_line = 0;
    std::optional<std::string> password_file;
    int password_file_line = 0;
    std::optional<std::string> ca_file;
    int ca_file_line = 0;
    std::optional<std::string> cert_file;
    int cert_file_line = 0;
    std::optional<std::string> key_file;
    int key_file_line = 0;
    std::vector<std::string> allow_commands;
    uint64_t spool_max_bytes = 64ull << 20;
    int64_t spool_max_age_ms = 7ll * 24 * 3600 * 1000;
    // Not a key: [host] state-dir/mqtt-spool, set by serve; unset: in memory.
    std::optional<std::string> spool_dir;
};

// The [mqtt] keys, in the order devhost.ini(5) lists them.
const std::vector<std::string> &mqtt_keys();

// Files one `key = value` of [mqtt]; false with `error` (one line, without
// the "[mqtt] key: " the caller puts before it) when the key is unknown or
// its value malformed.
bool mqtt_setting(MqttSettings &m, const std::string &key, const std::string &value, int line, std::string &error);

// After the last entry: what the section needs as a whole (a broker; a
// ca-file, cert-file or key-file only with mqtts://; username and
// password-file together; cert-file and key-file together).
void mqtt_finish(const MqttSettings &m, const std::string &file, std::vector<Diagnostic> &diags);

// Whether `name` can be one topic level (not empty, no '/', '+', '#', NUL
// or control character, at most 128 bytes); "" if so, else why not.
std::string topic_level_problem(const std::string &name);

// What `devhost check` adds for [mqtt]: the password and key files (and
// the CA and certificate files) opened and checked by descriptor, every
// device name and the node usable as a topic level.
void check_mqtt(const Config &config, std::vector<Diagnostic> &diags);

// A secret's file (the password file, the TLS key file): `path` opened
// read-only with O_NOFOLLOW, and the descriptor checked: a regular file of
// at most `max_bytes`, owned by root or by the user devhost runs as, with
// no group or other permission bits. An empty descriptor with `error` (one
// line naming "`what` 'PATH'") otherwise.
UniqueFd open_private_file(const std::string &path, const std::string &what, int64_t max_bytes,
                           std::string &error);

// The CA file (ca-file): it decides which brokers devhost trusts, so it
// must be a file only root or devhost's user can change, checked like a
// plugin by descriptor along its whole path (trusted_file.hpp); readable
// by anyone is fine. An empty descriptor with `error` (one line naming
// "CA file 'PATH'") otherwise.
UniqueFd open_ca_file(const std::string &path, std::string &error);

// The password file's first line, read from open_private_file (at most
// 4 KiB); nullopt with `error` (one line naming the file) otherwise.
std::optional<std::string> read_password_file(const std::string &path, std::string &error);

// The key file's bound: a PEM private key (RSA 16384 bits is about 12 KiB).
constexpr int64_t max_key_file_bytes = 64 * 1024;

// "64M", "4096", "512K", "1G" (powers of 1024); nullopt when malformed.
std::optional<uint64_t> parse_byte_size(const std::string &value);

// The node name in use: [mqtt] node, else the host name.
std::string mqtt_node(const MqttSettings &m);
// The client id in use: [mqtt] client-id, else devhost- and the machine id
// (/etc/machine-id; devhost-HOSTNAME when it cannot be read).
std::string mqtt_client_id(const MqttSettings &m);

}  // namespace devhost
