// devhost::UniqueFd (<devhost/unique_fd.hpp>): the one owner of a descriptor
// closes it exactly once, on every path, and release() hands it over
// without closing it. Checked on real descriptors with fcntl(F_GETFD).
#include <devhost/unique_fd.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int new_fd() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

TEST_CASE("unique_fd: the destructor closes the descriptor it owns")
{
    int raw = new_fd();
    REQUIRE(raw >= 0);
    {
        devhost::UniqueFd fd(raw);
        CHECK(fd.get() == raw);
        CHECK(static_cast<bool>(fd));
        CHECK(is_open(raw));
    }
    CHECK_FALSE(is_open(raw));
}

TEST_CASE("unique_fd: release hands the descriptor over open and leaves the owner empty")
{
    int raw = new_fd();
    REQUIRE(raw >= 0);
    int taken = -1;
    {
        devhost::UniqueFd fd(raw);
        taken = fd.release();
        CHECK(fd.get() == -1);
        CHECK_FALSE(static_cast<bool>(fd));
        CHECK(fd.release() == -1);
    }
    CHECK(taken == raw);
    CHECK(is_open(raw));
    ::close(raw);
}

TEST_CASE("unique_fd: reset closes the old descriptor and owns the new one")
{
    int a = new_fd(), b = new_fd();
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    {
        devhost::UniqueFd fd(a);
        fd.reset(b);
        CHECK_FALSE(is_open(a));
        CHECK(fd.get() == b);
        fd.reset();
        CHECK_FALSE(is_open(b));
        CHECK(fd.get() == -1);
    }
}

TEST_CASE("unique_fd: a move hands ownership over, and the moved-from owner closes nothing")
{
    int a = new_fd(), b = new_fd();
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    devhost::UniqueFd first(a);
    devhost::UniqueFd second(std::move(first));
    CHECK(first.get() == -1);
    CHECK(second.get() == a);
    devhost::UniqueFd third(b);
    third = std::move(second);  // closes b, takes a
    CHECK_FALSE(is_open(b));
    CHECK(third.get() == a);
    CHECK(is_open(a));
    third = devhost::UniqueFd();
    CHECK_FALSE(is_open(a));
}
