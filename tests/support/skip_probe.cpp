// Cases for the DEVHOST_SKIP test in tests/support/CMakeLists.txt: one that
// skips, one that fails. Hidden ([.]) so that nothing runs them by accident.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

TEST_CASE("a case that cannot run here", "[.][skips]")
{
    DEVHOST_SKIP("the probe always skips");
    FAIL("DEVHOST_SKIP did not leave the case");
}

TEST_CASE("a case that fails", "[.][fails]")
{
    CHECK(1 == 2);
}
