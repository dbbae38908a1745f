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
