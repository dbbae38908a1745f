# Hardening flags for every binary, library and plugin of the tree: the ones
# Debian's policy asks of a package (dpkg-buildflags' "hardening=+all", checked
# by hardening-check and lintian), applied to every build so that the build
# CI tests is the build the packages are made from.
#
#   position independent executables  CMAKE_POSITION_INDEPENDENT_CODE (top
#                                      CMakeLists) + CMP0083, checked here
#   stack protector                    -fstack-protector-strong
#   stack clash protection             -fstack-clash-protection
#   control-flow protection (x86)      -fcf-protection (the code has it; the
#                                      linker marks no binary IBT/SHSTK on
#                                      bookworm, whose crti.o lacks the
#                                      property, so hardening-check is told
#                                      not to look for it)
#   full RELRO                         -Wl,-z,relro -Wl,-z,now
#   _FORTIFY_SOURCE=2                  only when optimising (it needs -O1 or
#                                      more, and warns at -O0, so a Debug
#                                      build with -Werror would fail) and
#                                      without sanitizers (which intercept
#                                      the same functions)
#
# DEVHOST_HARDENING=OFF leaves all of them out.
option(DEVHOST_HARDENING "Build with the hardening flags (PIE, RELRO, stack protector, _FORTIFY_SOURCE)" ON)
if(NOT DEVHOST_HARDENING)
  return()
endif()

include(CheckPIESupported)
check_pie_supported(LANGUAGES C CXX)

include(CheckCCompilerFlag)
foreach(_flag -fstack-protector-strong -fstack-clash-protection -fcf-protection)
  string(MAKE_C_IDENTIFIER "DEVHOST_HAS${_flag}" _var)
  check_c_compiler_flag(${_flag} ${_var})
  if(${_var})
    add_compile_options(${_flag})
  endif()
endforeach()

add_link_options(LINKER:-z,relro LINKER:-z,now)

if(DEVHOST_SANITIZE STREQUAL "" AND NOT DEVHOST_FUZZ)
  add_compile_definitions($<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:_FORTIFY_SOURCE=2>)
endif()
