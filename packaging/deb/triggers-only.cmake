# Run by CPack (CPACK_POST_BUILD_SCRIPTS) once the packages are made. CPack
# gives a package with a shared library in /usr/lib a postinst and a postrm
# that call ldconfig, and offers no way to leave them out; Debian runs
# ldconfig through a trigger instead (lintian: maintscript-calls-ldconfig),
# which libdevhost-port1 has (its "triggers" control file,
# cmake/DevhostPackaging.cmake). So its package is unpacked, the two scripts
# removed, and packed again, owned by root as CPack packs it.
find_program(_dpkg_deb dpkg-deb REQUIRED)
foreach(_deb IN LISTS CPACK_PACKAGE_FILES)
  if(NOT _deb MATCHES "/libdevhost-port1_[^/]*\\.deb$")
    continue()
  endif()
  set(_tree "${CPACK_TOPLEVEL_DIRECTORY}/triggers-only")
  file(REMOVE_RECURSE "${_tree}")
  execute_process(COMMAND "${_dpkg_deb}" -R "${_deb}" "${_tree}" COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE "${_tree}/DEBIAN/postinst" "${_tree}/DEBIAN/postrm")
  execute_process(COMMAND "${_dpkg_deb}" --root-owner-group -b "${_tree}" "${_deb}"
                  OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${_tree}")
endforeach()
