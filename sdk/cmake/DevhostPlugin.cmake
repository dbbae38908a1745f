# devhost_add_plugin(<name> SOURCES <files...> [LINK <libs...>])
#
# Builds a devhost plugin: a loadable module named <name>.so that exports only
# its entry point, placed where the devhost binary looks for plugins. Used in
# the devhost tree and, through find_package(devhost), by out-of-tree plugins.
function(devhost_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE devhost::sdk ${ARG_LINK})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED DEVHOST_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${DEVHOST_PLUGIN_OUTPUT_DIR}")
  endif()
  if(DEFINED DEVHOST_PLUGIN_INSTALL_DIR)
    install(TARGETS ${name} LIBRARY DESTINATION "${DEVHOST_PLUGIN_INSTALL_DIR}"
            PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endif()
endfunction()

# devhost_add_conformance_test(<target> [NAME <test>] [DEVICE <path>...]
#                              [OPTION <name=value>...] [LOOPBACK] [UNPLUG <command>]
#                              [TIMEOUT <seconds>])
#
# A CTest test, by default <target>_conformance, that runs devhost-conformance
# on the plugin <target> builds: each DEVICE is a --device (two for the
# two-devices test), each OPTION an --option, LOOPBACK when a device reads
# back what is written, UNPLUG a shell command that makes the first device
# disappear. It also writes JUnit XML to <test>.xml in the build directory.
# The suite's exit status 4 (every test skipped) is reported as skipped. The
# tool is the devhost-conformance target in the devhost tree, else the
# installed DEVHOST_CONFORMANCE_EXECUTABLE (find_package(devhost)).
function(devhost_add_conformance_test target)
  cmake_parse_arguments(ARG "LOOPBACK" "NAME;UNPLUG;TIMEOUT" "DEVICE;OPTION" ${ARGN})
  if(TARGET devhost-conformance)
    set(_tool "$<TARGET_FILE:devhost-conformance>")
  elseif(DEVHOST_CONFORMANCE_EXECUTABLE)
    set(_tool "${DEVHOST_CONFORMANCE_EXECUTABLE}")
  else()
    message(FATAL_ERROR "devhost_add_conformance_test: no devhost-conformance (install the devhost SDK)")
  endif()
  if(NOT ARG_NAME)
    set(ARG_NAME "${target}_conformance")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  set(_args "")
  foreach(_d IN LISTS ARG_DEVICE)
    list(APPEND _args --device "${_d}")
  endforeach()
  foreach(_o IN LISTS ARG_OPTION)
    list(APPEND _args --option "${_o}")
  endforeach()
  if(ARG_LOOPBACK)
    list(APPEND _args --loopback)
  endif()
  if(ARG_UNPLUG)
    list(APPEND _args --unplug "${ARG_UNPLUG}")
  endif()
  add_test(NAME "${ARG_NAME}" COMMAND "${_tool}" "$<TARGET_FILE:${target}>" ${_args}
           --junit "${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.xml")
  set_tests_properties("${ARG_NAME}" PROPERTIES SKIP_RETURN_CODE 4 TIMEOUT "${ARG_TIMEOUT}" LABELS conformance)
endfunction()
