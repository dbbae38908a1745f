#include "class_match.hpp"

#include "common/text.hpp"

#include <cctype>
#include <fnmatch.h>
#include <sys/stat.h>

namespace devhost {

namespace {

// Transitional: the classes of the in-tree plugins as the host guessed them
// before ABI 1.1. Used only for a class whose plugin declares no
// path_patterns (or is not loaded, so that the error names it); this table
// goes once every in-tree plugin declares its patterns.
std::optional<std::string> legacy_class(const std::string &configured, const std::string &resolved)
{
    const std::string prefix = "\\\\.\\";
    if (configured.rfind(prefix, 0) == 0) {
        std::string bare = configured.substr(prefix.size());
        for (char &c : bare)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (const auto &[word, cls] : {std::pair<const char *, const char *>{"com", "serial"},
                                        {"lpt", "parallel"},
                                        {"physicaldrive", "raw"}})
            if (bare.rfind(word, 0) == 0)
                return cls;
    } else if (!configured.empty() && configured[0] == '\\') {
        return "filterport";
    }
    for (const char *p : {"/dev/tty", "/dev/pts/", "/dev/serial/"})
        if (resolved.rfind(p, 0) == 0)
            return "serial";
    if (resolved.rfind("/dev/parport", 0) == 0 || resolved.rfind("vport:", 0) == 0)
        return "parallel";
    if (resolved.rfind("loop:", 0) == 0)
        return "loop";
    struct stat st {};
    if (::stat(resolved.c_str(), &st) == 0) {
        if (S_ISBLK(st.st_mode) || S_ISREG(st.st_mode))
            return "raw";
        if (S_ISSOCK(st.st_mode))
            return "filterport";
    }
    return std::nullopt;
}

struct Best {
    const Plugin *plugin = nullptr;
    std::string pattern;
    size_t specificity = 0;
};

}  // namespace

size_t pattern_specificity(const std::string &pattern)
{
    const size_t special = pattern.find_first_of("*?[\\");
    return special == std::string::npos ? pattern.size() : special;
}

std::optional<std::string> class_for_path(const PluginRegistry &registry, const std::string &configured,
                                          const std::string &resolved, std::string &error)
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
    if (auto cls = legacy_class(configured, resolved)) {
        const auto plugin = registry.find(*cls);
        if (!plugin || plugin->path_patterns().empty())
            return cls;
    }
    error = "no plugin's path patterns match " + shown;
    return std::nullopt;
}

}  // namespace devhost
