# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) after it has installed the packages'
# files into its staging directory (CPACK_STRIP_FILES has stripped the
# binaries) and before it packs them. Does what Debian's tools (dh_compress,
# dh_strip) would:
#   - compresses every man page and each package's changelog with
#     `gzip -9n` (no name, no timestamp: reproducible packages);
#   - removes the .comment and .note sections from every ELF file.
# Doing it here, not in the install rules, keeps a plain `cmake --install`
# as it is, and takes in a man page or a binary added later.
find_program(_gzip gzip REQUIRED)
find_program(_strip strip REQUIRED)
file(GLOB_RECURSE _files LIST_DIRECTORIES false "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*")
foreach(_file IN LISTS _files)
  if(IS_SYMLINK "${_file}")
    continue()
  endif()
  set(_command "")
  if(_file MATCHES "/share/man/man[1-9]/[^/]+\\.[1-9]$" OR _file MATCHES "/share/doc/[^/]+/changelog$")
    set(_command "${_gzip}" -9n "${_file}")
  else()
    file(READ "${_file}" _magic LIMIT 4 HEX)
    if(_magic STREQUAL "7f454c46")
      set(_command "${_strip}" --remove-section=.comment --remove-section=.note "${_file}")
    endif()
  endif()
  if(_command)
    execute_process(COMMAND ${_command} RESULT_VARIABLE _status)
    if(NOT _status EQUAL 0)
      message(FATAL_ERROR "${_command} failed: ${_status}")
    endif()
  endif()
endforeach()
