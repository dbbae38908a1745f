// A worker of `devhost serve` (serve.hpp): the process that keeps a class's
// (or one device's) devices open between the phases the supervisor asks
// for. The request "serve" hands over the plugin file, the records
// descriptor and the watch table (as "run" does, worker.hpp); the worker
// answers "started" and then obeys, until "quit" or its channel closes:
//
//   device     a device's config (as run's, with its slot) and, as the
//              message's one descriptor, its cancel handle; nothing runs
//   setup      SLOT GENERATION: a new Device, its setup steps (a device of
//              `step =` lines only: nothing); on failure the setup is
//              unwound and the device forgotten until the next setup
//   body       SLOT: the body steps on the device its setup left (a device
//              of `step =` lines: the whole pipeline on a new Device, then
//              its unwind)
//   teardown   SLOT: the teardown steps, then the unwind of what is held
//   stop       record writes stop waiting for a slow reader (a stop came)
//
// Each phase runs on a thread of the device's own (one phase at a time per
// device, devices side by side) and ends with {"ev":"done", slot, phase,
// ok, status}. Records carry the generation and the phase (records.hpp).
// The supervisor's deadlines, cancel, kill and vault apply as in a run.
#pragma once

#include "config.hpp"
#include "worker_channel.hpp"

#include <memory>
#include <string>

namespace devhost {

class Plugin;
class PluginRegistry;
class WatchTable;

// The serve request's handler; the worker's exit code.
int serve_worker(Message &request);

// worker.cpp's, shared with the serve handler.
[[noreturn]] void worker_fail(const std::string &why);
std::shared_ptr<const Plugin> worker_load(PluginRegistry &registry, const std::string &file, UniqueFd fd);
void worker_set_watch_table(WatchTable *table);

}  // namespace devhost
