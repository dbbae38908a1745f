# Runs the installed devhost and checks what it said (tests/CMakeLists.txt,
# devhost_expect()):
#   cmake -DDEVHOST=PATH -DEXPECT=REGEX -DPLUGIN=FILE -P devhost_expect.cmake ARGS...
# Passes when `devhost ARGS...` exits 0, its output matches REGEX (when one
# is given) and it did not refuse FILE; fails saying why. When DEVHOST does not
# exist it prints "SKIPPED: ...", which the test's SKIP_REGULAR_EXPRESSION
# reports as skipped (a script cannot choose its exit status before CMake 3.29).
if(NOT EXISTS "${DEVHOST}")
  message("SKIPPED: the devhost host is not installed (DEVHOST_EXECUTABLE is '${DEVHOST}')")
  return()
endif()
# The arguments after the script's name (the one after -P).
set(_args "")
set(_after_p FALSE)
set(_in_args FALSE)
math(EXPR _last "${CMAKE_ARGC} - 1")
foreach(_i RANGE 1 ${_last})
  if(_in_args)
    list(APPEND _args "${CMAKE_ARGV${_i}}")
  elseif(_after_p)
    set(_in_args TRUE)
  elseif(CMAKE_ARGV${_i} STREQUAL "-P")
    set(_after_p TRUE)
  endif()
endforeach()

execute_process(COMMAND "${DEVHOST}" ${_args}
  RESULT_VARIABLE _status OUTPUT_VARIABLE _out ERROR_VARIABLE _err TIMEOUT 30)
string(REPLACE ";" " " _shown "${_args}")
message("devhost ${_shown}\nexit: ${_status}\nstdout:\n${_out}\nstderr:\n${_err}")
get_filename_component(_plugin_name "${PLUGIN}" NAME)
string(REGEX MATCH "plugin [^\n]*${_plugin_name} refused[^\n]*" _refused "${_err}")
if(_refused)
  message(FATAL_ERROR "the host refused the built plugin: ${_refused}")
endif()
if(NOT _status EQUAL 0)
  message(FATAL_ERROR "devhost exited ${_status}, not 0")
endif()
if(NOT EXPECT STREQUAL "" AND NOT _out MATCHES "${EXPECT}")
  message(FATAL_ERROR "devhost's output does not match: ${EXPECT}")
endif()
