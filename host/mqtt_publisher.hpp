// devhost serve's MQTT client (issue 16): the loop's events, as
// mqtt_sparkplug.hpp shapes them, published through Debian's libmosquitto
// to the [mqtt] broker (mqtt_config.hpp).
//
// Threading: the client runs on a thread of its own (not the serve loop's
// poll set, not mosquitto_loop_start): a DNS lookup (getaddrinfo inside
// mosquitto_connect_async), a TLS handshake or a slow broker must never
// delay a device's deadline, and our own thread lets us set each
// connection's will (its bdSeq) before it connects, choose our reconnect
// backoff, and stop within 100 ms of being asked. The serve loop only
// takes a mutex, updates the device table and queues a message
// (mosquitto_threaded_set: the queueing call wakes the client thread and
// never writes to the socket itself).
//
// DDATA (step records, state changes) and NDATA go through the spool
// (mqtt_spool.hpp: [host] state-dir/mqtt-spool, else in memory): each is
// written there first, sent when connected, oldest first, with its "rseq",
// and leaves the spool only once the broker confirmed it; a connection that
// ends sends the unconfirmed ones again on the next, after its births.
// Births and deaths are not spooled: after each connect, NBIRTH and every
// device's DBIRTH give the whole current state.
#pragma once

#include "mqtt_config.hpp"
#include "mqtt_spool.hpp"
#include "serve.hpp"

#include <memory>
#include <string>

namespace devhost {

// The publisher for `m`; its thread starts (and connects in the
// background) at start(); nullptr with `error` (one line) when it cannot be made (the
// password file refused, libmosquitto out of memory).
std::unique_ptr<EventSink> make_mqtt_publisher(const MqttSettings &m, std::string &error);

// The spool's depth, bytes and drops of a publisher make_mqtt_publisher
// made (zeros for another sink); thread-safe (for the metrics).
SpoolStats mqtt_spool_stats(EventSink &sink);

}  // namespace devhost
