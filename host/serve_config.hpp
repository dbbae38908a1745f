// The keys of a [device] section that only `devhost serve` acts on
// (serve.hpp), parsed with the rest of the config (config.cpp):
//
//   setup = STEP      once per attach: open, connect, lock ... (repeated, in order)
//   body = STEP       at each trigger (repeated, in order)
//   teardown = STEP   on stop, reload, removal: unlock, close ... (repeated)
//   run = WORDS       start | every D | on-attach | on-demand, several words on
//                     a line and several lines adding up (`run = start every 1s`)
//   stale-after = D   the device is stale when no body succeeded for D
//
// `step =` lines alone stay a whole pipeline, which serve runs at each
// trigger; they do not mix with setup/body/teardown. A body runs again and
// again on the device its setup left, so it must leave the device as it
// found it: no open, close, connect or disconnect in it, and every lock it
// takes it releases (check_body_repeats names the step that breaks this).
#pragma once

#include "config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace devhost {

enum class Phase { Setup = 0, Body = 1, Teardown = 2 };

// "setup", "body", "teardown"; nullopt for any other key.
std::optional<Phase> phase_of_key(const std::string &key);
const char *phase_name(Phase phase);

// Adds the words of one `run =` value to `run`; false with `error` (one
// line, naming the word) when a word is not a trigger.
bool parse_run(const std::string &value, RunTriggers &run, std::string &error);

// Per device while the config is filed: the steps of each phase.
struct PhaseSteps {
    std::vector<Step> of[3];
    int first_step_line = 0;   // the first `step =` line, 0 if none
    int first_phase_line = 0;  // the first setup/body/teardown line, 0 if none
};

// Puts the phases' steps into `d.steps` in running order (setup, body,
// teardown) and reports a device that mixes `step =` with them, or has
// setup/teardown but no body.
void assemble_phases(DeviceConfig &d, PhaseSteps &phases, const std::string &file, std::vector<Diagnostic> &diags);

// Whether `d`'s body leaves the device as it found it (see above); one
// diagnostic per step that does not.
void check_body_repeats(const DeviceConfig &d, const std::string &file, std::vector<Diagnostic> &diags);

// The phase of step `i` of `d` (a device of `step =` lines: all Body).
Phase phase_of_step(const DeviceConfig &d, size_t i);

}  // namespace devhost
