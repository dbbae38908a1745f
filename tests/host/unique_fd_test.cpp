// devhost::UniqueFd (sdk/include/devhost/unique_fd.hpp), the one owner of a
// descriptor: it closes what it holds when it goes or is reset, a move hands
// the descriptor over, and release() gives it up without closing it.
#include <devhost/unique_fd.hpp>

#include <catch2/catch.hpp>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

using devhost::UniqueFd;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int new_fd()
{
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
}

}  // namespace

TEST_CASE("a UniqueFd closes its descriptor when it goes or is reset", "[unique_fd]")
{
    int fd = new_fd();
    {
        UniqueFd owner(fd);
        CHECK(owner);
        CHECK(owner.get() == fd);
    }
    CHECK_FALSE(is_open(fd));

    fd = new_fd();
    UniqueFd owner(fd);
    const int other = new_fd();
    owner.reset(other);
    CHECK_FALSE(is_open(fd));
    CHECK(is_open(other));
    owner.reset();
    CHECK_FALSE(owner);
    CHECK(owner.get() == -1);
    CHECK_FALSE(is_open(other));
}

TEST_CASE("a moved UniqueFd hands its descriptor over and closes nothing itself", "[unique_fd]")
{
    const int fd = new_fd();
    UniqueFd from(fd);
    UniqueFd to(std::move(from));
    CHECK_FALSE(from);
    CHECK(to.get() == fd);
    const int second = new_fd();
    UniqueFd target(second);
    target = std::move(to);  // closes what target held
    CHECK_FALSE(is_open(second));
    CHECK(target.get() == fd);
    CHECK(is_open(fd));
}

TEST_CASE("release() gives the descriptor up without closing it", "[unique_fd]")
{
    const int fd = new_fd();
    int released = -1;
    {
        UniqueFd owner(fd);
        released = owner.release();
        CHECK_FALSE(owner);
        CHECK(owner.get() == -1);
    }
    CHECK(released == fd);
    CHECK(is_open(fd));  // the caller owns it now
    ::close(fd);
    UniqueFd empty;
    CHECK(empty.release() == -1);
}
