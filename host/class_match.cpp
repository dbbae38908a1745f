#include "class_match.hpp"

#include "common/device_path.hpp"
#include "common/text.hpp"

#include <cstdlib>
#include <fnmatch.h>
#include <sys/stat.h>
#include <tuple>

namespace devhost {

namespace {

struct Best {
    const Plugin *plugin = nullptr;
    std::string pattern;
    size_t specificity = 0;
};

// The plugin whose pattern matching `resolved` is the most specific, and
// another as specific when there is one (a tie).
std::pair<Best, Best> best_pattern(const PluginRegistry &registry, const std::string &resolved)
{
    Best best, tie;
    for (const auto &plugin : registry.plugins()) {
        Best mine;
        for (const auto &pattern : plugin->path_patterns()) {
            const size_t s = pattern_specificity(pattern);
            const bool better = !mine.plugin || s > mine.specificity;
            if (better && ::fnmatch(pattern.c_str(), resolved.c_str(), 0) == 0)
                mine = {plugin.get(), pattern, s};
        }
        if (!mine.plugin)
            continue;
        if (!best.plugin || mine.specificity > best.specificity) {
            best = mine;
            tie = {};
        } else if (mine.specificity == best.specificity) {
            tie = mine;
        }
    }
    return {best, tie};
}

// The DEVHOST_PATH_* bit of a file's kind and its name, or {0, name} for a
// kind no bit names (a directory, a FIFO, ...).
std::pair<uint32_t, const char *> path_type(mode_t mode)
{
    if (S_ISREG(mode))
        return {DEVHOST_PATH_REGULAR, "a regular file"};
    if (S_ISBLK(mode))
        return {DEVHOST_PATH_BLOCK, "a block device"};
    if (S_ISCHR(mode))
        return {DEVHOST_PATH_CHAR, "a character device"};
    if (S_ISSOCK(mode))
        return {DEVHOST_PATH_SOCKET, "a socket"};
    if (S_ISDIR(mode))
        return {0, "a directory"};
    if (S_ISFIFO(mode))
        return {0, "a FIFO"};
    return {0, "a file of another kind"};
}

}  // namespace

size_t pattern_specificity(const std::string &pattern)
{
    const size_t special = pattern.find_first_of("*?[\\");
    return special == std::string::npos ? pattern.size() : special;
}

std::optional<std::string> class_for_path(const PluginRegistry &registry, const std::string &configured,
                                          const std::string &resolved, std::string &error)
{
    // Its kind and its link's target are looked at below only when the
    // path breaks no trust rule (common/device_path.hpp): a guess never
    // follows a planted link.
    if (auto refusal = output::device_path_refusal(resolved)) {
        error = "path '" + text::excerpt(resolved) + "': " + *refusal;
        return std::nullopt;
    }
    auto [best, tie] = best_pattern(registry, resolved);
    if (!best.plugin) {
        // A link no pattern names ([names] COM7 = /tmp/mylink) is taken by
        // what it leads to (/dev/pts/7).
        char *real = ::realpath(resolved.c_str(), nullptr);
        if (real) {
            const std::string target(real);
            std::free(real);
            if (target != resolved)
                std::tie(best, tie) = best_pattern(registry, target);
        }
    }
    const std::string shown = "'" + text::excerpt(configured) + "'" +
                              (resolved != configured ? " ('" + text::excerpt(resolved) + "')" : std::string());
    if (tie.plugin) {
        error = shown + " matches class '" + best.plugin->device_class() + "' (pattern '" + best.pattern +
                "') and class '" + tie.plugin->device_class() + "' (pattern '" + tie.pattern +
                "') alike: say which class";
        return std::nullopt;
    }
    if (best.plugin)
        return best.plugin->device_class();
    const std::string unmatched = "no plugin's path patterns match " + shown;
    // No pattern names the path: its kind of file may (path_types). A
    // guess for the user, who can always say `class =`; a path that does
    // not exist (yet) has no kind.
    struct stat st {};
    if (::stat(resolved.c_str(), &st) != 0) {
        error = unmatched;
        return std::nullopt;
    }
    const auto [type, kind] = path_type(st.st_mode);
    const Plugin *found = nullptr;
    for (const auto &plugin : registry.plugins()) {
        if (!type || !(plugin->path_types() & type))
            continue;
        if (found) {
            error = unmatched + " (" + kind + ", which class '" + found->device_class() + "' and class '" +
                    plugin->device_class() + "' both take by their path types): say which class";
            return std::nullopt;
        }
        found = plugin.get();
    }
    if (found)
        return found->device_class();
    error = unmatched + " (" + kind + ", which no plugin's path types take)";
    return std::nullopt;
}

}  // namespace devhost
