#include "serve_config.hpp"

#include "common/text.hpp"

#include <sstream>

namespace devhost {

std::optional<Phase> phase_of_key(const std::string &key)
{
    if (key == "setup")
        return Phase::Setup;
    if (key == "body")
        return Phase::Body;
    if (key == "teardown")
        return Phase::Teardown;
    return std::nullopt;
}

const char *phase_name(Phase phase)
{
    switch (phase) {
    case Phase::Setup: return "setup";
    case Phase::Body: return "body";
    case Phase::Teardown: return "teardown";
    }
    return "body";
}

bool parse_run(const std::string &value, RunTriggers &run, std::string &error)
{
    std::istringstream words(value);
    std::string word;
    bool any = false;
    while (words >> word) {
        any = true;
        if (word == "start") {
            run.start = true;
        } else if (word == "on-attach") {
            run.on_attach = true;
        } else if (word == "on-demand") {
            run.on_demand = true;
        } else if (word == "every") {
            std::string period;
            words >> period;
            const auto ms = text::parse_duration_ms(period);
            if (!ms || *ms < 1) {
                error = "every: expected a period of 1ms or more like 250ms or 2s, got '" + text::excerpt(period) + "'";
                return false;
            }
            if (run.every_ms) {
                error = "every: given twice (a device has one period)";
                return false;
            }
            run.every_ms = ms;
        } else {
            error = "expected start, every D, on-attach or on-demand, got '" + text::excerpt(word) + "'";
            return false;
        }
    }
    if (!any) {
        error = "expected start, every D, on-attach or on-demand";
        return false;
    }
    return true;
}

void assemble_phases(DeviceConfig &d, PhaseSteps &phases, const std::string &file, std::vector<Diagnostic> &diags)
{
    if (!d.phased)
        return;
    const std::string where = "[device " + text::excerpt(d.name) + "]: ";
    if (phases.first_step_line)
        diags.push_back({file, phases.first_step_line,
                         where + "'step =' beside setup/body/teardown (line " +
                             std::to_string(phases.first_phase_line) +
                             "): write the steps each trigger runs as 'body ='"});
    else if (phases.of[1].empty())
        diags.push_back({file, d.line, where + "setup or teardown but no 'body =': nothing for a trigger to run"});
    // Any `step =` lines (an error above) count as body steps, so that the
    // lifecycle check says nothing more of them.
    for (auto &s : d.steps)
        phases.of[1].push_back(std::move(s));
    std::vector<Step> steps;
    for (auto &phase : phases.of)
        for (auto &s : phase)
            steps.push_back(std::move(s));
    d.setup_steps = phases.of[0].size();
    d.body_steps = phases.of[1].size();
    d.steps = std::move(steps);
}

Phase phase_of_step(const DeviceConfig &d, size_t i)
{
    if (!d.phased)
        return Phase::Body;
    if (i < d.setup_steps)
        return Phase::Setup;
    return i < d.setup_steps + d.body_steps ? Phase::Body : Phase::Teardown;
}

void check_body_repeats(const DeviceConfig &d, const std::string &file, std::vector<Diagnostic> &diags)
{
    if (!d.phased)
        return;  // a whole pipeline per trigger: its unwind leaves nothing behind
    auto fail = [&](const Step &s, const std::string &what) {
        diags.push_back({file, s.line, "[device " + text::excerpt(d.name) + "] body '" + text::excerpt(s.text) +
                                           "': a body runs at every trigger and must leave the device as it found "
                                           "it: " + what});
    };
    const Step *lock = nullptr;  // a lock the body took and has not released
    for (size_t i = d.setup_steps; i < d.setup_steps + d.body_steps && i < d.steps.size(); i++) {
        const Step &s = d.steps[i];
        switch (s.kind) {
        case StepKind::Open:
        case StepKind::Connect: fail(s, "move it to setup"); break;
        case StepKind::Close:
        case StepKind::Disconnect: fail(s, "move it to teardown"); break;
        case StepKind::Lock: lock = &s; break;
        case StepKind::Unlock:
            if (!lock)
                fail(s, "it releases a lock the body did not take (move it to teardown)");
            lock = nullptr;
            break;
        default: break;
        }
    }
    if (lock)
        fail(*lock, "it leaves the lock taken (add 'body = unlock' after it, or take the lock in setup)");
}

}  // namespace devhost
