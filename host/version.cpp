#include "loader.hpp"

namespace devhost {

std::string format_version(uint32_t abi_version)
{
    return std::to_string(DEVHOST_VERSION_MAJOR(abi_version)) + "." +
           std::to_string(DEVHOST_VERSION_MINOR(abi_version));
}

}  // namespace devhost
