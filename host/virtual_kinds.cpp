#include "virtual_kinds.hpp"

#include "pipe.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace devhost {

namespace {

constexpr size_t max_answer_bytes = 1u << 20;

// Runs `tool arg` with its stdout on a pipe and returns what it printed, at
// most max_answer_bytes, within 5 s; nullopt with `error` set when it
// cannot run or does not exit 0.
std::optional<std::string> run_and_read(const std::string &tool, const char *arg, std::string &error)
{
    auto out = make_pipe(error);
    if (!out)
        return std::nullopt;
    char *argv[] = {const_cast<char *>(tool.c_str()), const_cast<char *>(arg), nullptr};
    pid_t pid = fork();
    if (pid < 0) {
        error = std::string("fork: ") + std::strerror(errno);
        return std::nullopt;
    }
    if (pid == 0) {
        dup2(out->write.get(), STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    out->write.reset();  // the child's end: the reads below see it exit
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{out->read.get(), POLLIN, 0};
        int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        char buf[4096];
        ssize_t r = n > 0 ? ::read(out->read.get(), buf, sizeof buf) : -1;
        if (r <= 0 || answer.size() > max_answer_bytes)
            break;
        answer.append(buf, static_cast<size_t>(r));
    }
    out->read.reset();
    ::kill(pid, SIGKILL);  // already gone unless it hung
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        error = tool + " " + arg + " failed" +
                (WIFEXITED(status) && WEXITSTATUS(status) == 127 ? std::string(" (cannot run it)") : std::string());
        return std::nullopt;
    }
    return answer;
}

// One kind's "options" array; false when an entry is not an option.
bool read_options(const nlohmann::json &list, std::vector<VirtualOption> &options)
{
    if (!list.is_array())
        return false;
    for (const auto &o : list) {
        if (!o.is_object() || !o.contains("key") || !o["key"].is_string() || o["key"].get<std::string>().empty())
            return false;
        VirtualOption option;
        option.key = o["key"].get<std::string>();
        option.type = o.value("type", "string");
        option.required = o.value("required", false);
        options.push_back(std::move(option));
    }
    return true;
}

}  // namespace

std::optional<VirtualKinds> parse_virtual_kinds(std::string_view json, std::string &error)
{
    const nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("kinds") || !doc["kinds"].is_array()) {
        error = "not a --describe-kinds document (expected a JSON object with \"kinds\")";
        return std::nullopt;
    }
    VirtualKinds kinds;
    for (const auto &k : doc["kinds"]) {
        if (!k.is_object() || !k.contains("name") || !k["name"].is_string() ||
            !read_options(k.value("options", nlohmann::json::array()), kinds[k["name"].get<std::string>()])) {
            error = "a kind without a name, or with a malformed \"options\" list: " + k.dump().substr(0, 80);
            return std::nullopt;
        }
    }
    if (kinds.empty()) {
        error = "it describes no kind";
        return std::nullopt;
    }
    return kinds;
}

std::optional<VirtualKinds> describe_virtual_kinds(const std::filesystem::path &tool, std::string &error)
{
    const std::string exe = tool.string();
    auto answer = run_and_read(exe, "--describe-kinds", error);
    if (!answer)
        return std::nullopt;
    auto kinds = parse_virtual_kinds(*answer, error);
    if (!kinds)
        error = exe + " --describe-kinds: " + error;
    return kinds;
}

}  // namespace devhost
