# The Debian packages, made by CPack's DEB generator from this build tree
# (scripts/package.sh runs `cpack`):
#
#   devhost            component host: what installs without naming a component
#                      (the host, its plugins, devhost-vdev, devhost-filefilter,
#                      the configs, man pages, bash completion) and
#                      /etc/devhost/devhost.ini, a conffile copied from
#                      configs/default.ini
#   libdevhost-port1   component port: libdevhost-port.so.1 (sdk/port)
#   devhost-dev        component dev: headers, the CMake package, devhost.pc,
#                      the plugin template, the ABI man page (sdk/, doc/)
#
# What only a package has (the conffile, /usr/share/doc/PACKAGE/copyright and
# changelog) is installed EXCLUDE_FROM_ALL: CPack installs each component by
# name, so it gets them, and a plain `cmake --install` does not. Debian's
# rules CPack does not know are kept by packaging/deb/: the files,
# prepare.cmake (run between CPack's install and its packing: compression,
# the sections dh_strip removes) and triggers-only.cmake (run on the made
# packages: ldconfig by its trigger, not by CPack's scripts).
#
# Why CPack and not a debian/ directory built by dpkg-buildpackage: the
# packages are made from the build CI has already compiled and tested (no
# second build of the whole tree on CI's two cores), the install rules stay
# the one list of what goes where, and what debhelper would add (compressing,
# stripping, shlibs, triggers, conffiles) is these few files; lintian finds
# no error or warning in the result (scripts/package-test.sh).
set(_deb_dir "${CMAKE_SOURCE_DIR}/packaging/deb")
set(_deb_version "${PROJECT_VERSION}")  # native: packaging/deb/changelog's version

# devhost serve's config (devhost.service reads it); a conffile.
install(FILES configs/serve.ini DESTINATION /etc/devhost RENAME devhost.ini
        COMPONENT host EXCLUDE_FROM_ALL)
foreach(_pair host:devhost port:libdevhost-port1 dev:devhost-dev)
  string(REPLACE ":" ";" _pair "${_pair}")
  list(GET _pair 0 _component)
  list(GET _pair 1 _package)
  string(TOUPPER "${_component}" _upper)
  set(CPACK_DEBIAN_${_upper}_PACKAGE_NAME "${_package}")
  install(FILES "${_deb_dir}/copyright" "${_deb_dir}/changelog"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/${_package}" COMPONENT ${_component} EXCLUDE_FROM_ALL)
endforeach()

# Control files CPack does not write: the conffile list, and the port
# library's shlibs and its ldconfig trigger.
set(_control "${CMAKE_BINARY_DIR}/packaging/deb")
file(WRITE "${_control}/host/conffiles" "/etc/devhost/devhost.ini\n")
file(WRITE "${_control}/port/shlibs" "libdevhost-port 1 libdevhost-port1 (>= ${_deb_version})\n")
file(WRITE "${_control}/port/triggers" "activate-noawait ldconfig\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME devhost)
set(CPACK_PACKAGE_VERSION "${_deb_version}")
set(CPACK_PACKAGE_VENDOR "The devhost authors")
set(CPACK_PACKAGE_CONTACT "devhost maintainers <devhost@example.org>")
# Each package's summary is the first line of its description below. CPack
# would put the project's summary before it unless that summary is CPack's
# own default, so it is set to that default.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
set(CPACK_RESOURCE_FILE_LICENSE "${CMAKE_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)       # /etc/devhost is absolute; devhost.pc reads the real prefix
set(CPACK_STRIP_FILES ON)
set(CPACK_PRE_BUILD_SCRIPTS "${_deb_dir}/prepare.cmake")           # gzip -9n, sections dh_strip removes
set(CPACK_POST_BUILD_SCRIPTS "${_deb_dir}/triggers-only.cmake")   # ldconfig by trigger only
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL host port dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_VERSION "${_deb_version}")
set(CPACK_DEBIAN_PACKAGE_SOURCE devhost)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_HOST_PACKAGE_SECTION utils)
# dlopen'd by serve (host/libsystemd.hpp), so dpkg-shlibdeps cannot see it.
set(CPACK_DEBIAN_HOST_PACKAGE_DEPENDS "libsystemd0 (>= 252)")
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_EXTRA "${_control}/host/conffiles")
set(CPACK_COMPONENT_HOST_DESCRIPTION "user-space device host with plugins per device class
devhost drives serial ports, parallel ports, filter communication ports and
raw disks through one plugin per device class, loaded through a stable C ABI.
Each configured device runs a pipeline of steps (open, connect, lock,
transfers, close) written in an INI config, and every step yields one JSON
record. This package has the devhost command, its plugins, the virtual
device peers (devhost-vdev), the reference filter-port server, the manual
and bash completion; /etc/devhost/devhost.ini is a config to start from.")

set(CPACK_DEBIAN_PORT_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PORT_PACKAGE_CONTROL_EXTRA "${_control}/port/shlibs;${_control}/port/triggers")
set(CPACK_COMPONENT_PORT_DESCRIPTION "devhost filter-port library
libdevhost-port serves a devhost filter communication port: a program that
links it accepts devhost's filterport clients on a Unix socket, answers
their requests and sends them messages (devhost/port.h).")

set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS host port)
set(CPACK_COMPONENT_DEV_DESCRIPTION "devhost plugin SDK
Everything needed to write a devhost plugin without devhost's source: the
plugin ABI headers (devhost/plugin.h and its helpers), the filter-port
library's headers and link, a CMake package (find_package(devhost)) and a
pkg-config file (devhost.pc) naming the headers, the ABI version and the
directory the host loads plugins from, the ABI's manual page
(devhost-plugin(7)), the contract suite devhost-conformance (one test per
numbered MUST of the ABI, TAP, JUnit or JSON) and a plugin template with its
config and tests.")

include(CPack)
