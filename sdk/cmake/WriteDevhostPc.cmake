# Run at install time (sdk/CMakeLists.txt's install(CODE)): writes devhost.pc
# from devhost.pc.in for the prefix being installed to. A directory given
# relative to the prefix is written as ${prefix}/DIR, so the file reads as
# pkg-config files usually do; an absolute one is kept.
foreach(_dir LIBDIR INCLUDEDIR BINDIR PLUGIN_DIR TEMPLATE_DIR)
  if(NOT IS_ABSOLUTE "${DEVHOST_PC_${_dir}}")
    set(DEVHOST_PC_${_dir} "\${prefix}/${DEVHOST_PC_${_dir}}")
  endif()
endforeach()
set(DEVHOST_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
configure_file("${DEVHOST_PC_IN}" "${DEVHOST_PC_OUT}" @ONLY)
