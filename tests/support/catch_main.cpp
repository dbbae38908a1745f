// The one Catch2 main, compiled once and linked into every test binary.
// A test case that cannot run here calls DEVHOST_SKIP(reason)
// (devhost_test.hpp): the run then exits 77 unless something failed, and
// CTest, told SKIP_RETURN_CODE 77 (cmake/DevhostTesting.cmake), reports the
// case as skipped with its reason instead of passed. Catch2 2.13 has no skip
// of its own.
#define CATCH_CONFIG_RUNNER
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

int main(int argc, char *argv[])
{
    const int failed = Catch::Session().run(argc, argv);
    if (failed == 0 && devhost::test::skipped())
        return devhost::test::skip_exit_code;
    return failed;
}
