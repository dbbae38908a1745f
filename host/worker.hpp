// A worker: the process that loads plugin code, so the supervisor never
// does (README, "Process model"). The supervisor starts it as
// `devhost __worker` with its end of the channel as descriptor 3
// (supervisor.hpp), and sends it one request:
//
//   describe   load each plugin file handed over (checked by the supervisor,
//              by descriptor) and answer each one's description or refusal,
//              saying "loading" before each, so that a constructor that
//              kills or hangs the worker is pinned on its file
//   enumerate  load one plugin and run its enumerate (devhost scan)
//   run        load one plugin and run the pipelines of the devices given,
//              whole, on the engine: records go straight to the output
//              descriptor handed over (one write(2) each, under the watch
//              table's records lock), each hook call is published in the
//              watch table, the plugin's share_fd sends the descriptor to
//              the supervisor's vault; then answer every pipeline's result
//
// Its log lines go to the supervisor (which writes them where the host
// logs); what a plugin prints to stdout lands on stderr, never in records.
#pragma once

namespace devhost {

// The worker's main; its exit code.
int run_worker(int argc, char **argv);

// The descriptor the worker finds its channel on.
inline constexpr int worker_channel_fd = 3;

}  // namespace devhost
