// Helpers for the serial tests: the serial plugin loaded through the host's
// loader, and a devhost-vdev peer. Ptys, transfers and info come from the
// shared test library (tests/support/devices.hpp).
#pragma once

#include "devhost_test.hpp"
#include "devices.hpp"
#include "device.hpp"
#include "loader.hpp"

#include <memory>
#include <string>

namespace serial_test {

using devhost::test::Pty;
using Result = devhost::test::TransferResult;

std::shared_ptr<const devhost::Plugin> serial_plugin();

// Starts devhost-vdev KIND with --link=<dir>/NAME and waits for READY.
// Returns the link path; the Child is stored in `child`.
std::string start_vdev(std::unique_ptr<devhost::test::Child> &child, const devhost::test::TempDir &dir,
                       const std::string &kind, const std::vector<std::string> &args = {});

}  // namespace serial_test
