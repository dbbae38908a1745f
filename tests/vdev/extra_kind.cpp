// One more kind for a variant of devhost-vdev (built from vdev/main.cpp and
// vdev/kinds.cpp with this file instead of the real kinds): what a kind
// declares in its table is what --describe-kinds, --kinds and --help show,
// and what `devhost check` accepts (tests/vdev/describe_kinds_test.cpp).
#include "vdev.hpp"

namespace {

int run_extra(devhost::vdev::Context &ctx)
{
    ctx.reject_unknown();
    return 0;
}

}  // namespace

DEVHOST_VDEV_KIND("extra-kind", "a kind that exists only in this test's variant of devhost-vdev",
                  {{"alpha", "N", "int", true}, {"beta", "D (default: 1s)", "duration"}, {"gamma", "BOOL", "bool"}},
                  run_extra);

// A serial peer's table with one key added to it.
DEVHOST_VDEV_KIND("extra-serial", "a serial peer's keys plus one",
                  devhost::vdev::serial_peer_options({{"added", "TEXT", "string"}}), run_extra);
