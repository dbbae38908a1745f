// Whether root may open a device's filesystem path by name (a plugin opens
// `path =` by path through the ABI, and class_match stats it): the path is
// walked from "/" one component at a time, by descriptor, with the trust
// rule of output_file.hpp extended for a name that is opened later. In a
// directory someone other than root and the effective user can write
// (output::others_can_write):
//   - a symbolic link is not followed (anyone could have planted it to send
//     root to a file or a device of theirs choosing);
//   - the entry (a directory on the way or the final file) must belong to
//     root or the effective user, and a regular file must have one hard
//     link (output::planted);
//   - the directory must be sticky (else anyone may rename root's entry
//     away and put their own in its place before the plugin opens it).
// In a directory only root and the effective user can write, a link is
// followed by walking its target the same way (at most 40 links).
// A path that does not exist (yet) passes: the plugin reports it at open.
#pragma once

#include <optional>
#include <string>

namespace devhost::output {

// nullopt when `path` may be opened by name, or is no filesystem path (it
// does not start with '/': loop:, vport:, virtual: ...); otherwise one line
// saying why not (naming the component when it is not the whole path).
std::optional<std::string> device_path_refusal(const std::string &path);

}  // namespace devhost::output
