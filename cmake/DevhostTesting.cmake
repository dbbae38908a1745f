# Test helpers shared by tests/ and plugins/<class>/tests/.
#
# devhost_add_test(<name> SOURCES <files...> [LINK <libs...>] [LABELS <label>])
#   A Catch2 test binary, linked with the shared Catch2 main and the test
#   support library (tests/support), whose test cases are registered with
#   CTest one by one, with one label (default: unit); a case that calls
#   DEVHOST_SKIP exits 77, which CTest reports as skipped. Compile definitions give the test the build's layout:
#   DEVHOST_BIN_DIR (devhost, devhost-vdev), DEVHOST_PLUGIN_DIR (built plugins),
#   DEVHOST_SOURCE_DIR, DEVHOST_BINARY_DIR.
enable_testing()
find_package(Catch2 2.13 REQUIRED)
include(Catch)

add_library(devhost_catch_main OBJECT "${CMAKE_SOURCE_DIR}/tests/support/catch_main.cpp")
target_link_libraries(devhost_catch_main PUBLIC Catch2::Catch2)
target_include_directories(devhost_catch_main PRIVATE "${CMAKE_SOURCE_DIR}/tests/support")

function(devhost_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} $<TARGET_OBJECTS:devhost_catch_main>)
  target_link_libraries(${name} PRIVATE Catch2::Catch2 devhost_test_support ${ARG_LINK})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
  set(_labels ${ARG_LABELS})
  if(NOT _labels)
    set(_labels unit)
  endif()
  # Catch's test discovery splits a list of labels into separate property
  # arguments, so a test binary carries exactly one label.
  list(LENGTH _labels _count)
  if(_count GREATER 1)
    message(FATAL_ERROR "devhost_add_test(${name}): give one label, not '${_labels}'")
  endif()
  catch_discover_tests(${name}
    TEST_PREFIX "${name}: "
    DISCOVERY_TIMEOUT 30
    PROPERTIES LABELS "${_labels}" TIMEOUT 120 SKIP_RETURN_CODE 77)
endfunction()
