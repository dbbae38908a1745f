// The supervisor's channel to a worker: a SOCK_SEQPACKET socketpair, one
// JSON object per message, descriptors beside it (SCM_RIGHTS). A message
// too large for one datagram goes in a sealed memfd sent with it, so a
// config of any size crosses whole. Nothing read from the other side is
// trusted: sizes are bounded, bad JSON is an error, never a crash.
#pragma once

#include <devhost/unique_fd.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace devhost {

// The most descriptors one message carries (the kernel's SCM_MAX_FD is 253).
inline constexpr size_t max_message_fds = 200;
// The largest message read back from a memfd.
inline constexpr size_t max_message_bytes = 512u << 20;

struct Message {
    nlohmann::json body;
    std::vector<UniqueFd> fds;
};

enum class Received { Message, Timeout, Closed, Bad };

// Sends `body` with `fds` (each duplicated by the kernel; the caller keeps
// its own). False with errno set when the peer is gone or the send failed.
bool send_message(int socket, const nlohmann::json &body, const std::vector<int> &fds = {});

// Waits up to `timeout_ms` (-1: no limit) for one message. Bad: the peer
// sent something that is no message of ours (`error` says what).
Received receive_message(int socket, Message &out, int timeout_ms, std::string &error);

// Makes the pair (both ends close-on-exec). Throws std::system_error.
void make_channel(UniqueFd &supervisor_end, UniqueFd &worker_end);

}  // namespace devhost
