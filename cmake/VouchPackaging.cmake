# Install rules for the binaries, their configuration, systemd units and man
# pages, and the CPack DEB setup that turns them into one Debian package per
# component (scripts/package runs it; docs/deploy.md says why CPack):
#   component  package          contents
#   agent      vouch-agent      /usr/bin/vouch-agent, /etc/vouch/agent.toml, unit, man page
#   verifier   vouch-verifier   likewise
#   registrar  vouch-registrar  likewise
#   vouchctl   vouchctl         /usr/bin/vouchctl, man page
#   sdk        libvouch-dev     headers, static libraries, CMake config (src/sdk)
include(GNUInstallDirs)

set(VOUCH_PACKAGE_MAINTAINER "Vouch maintainers <vouch@vouch.example>"
  CACHE STRING "Maintainer field of the Debian packages")
set(_deb ${PROJECT_SOURCE_DIR}/deploy/debian)
set(_pkgdir ${PROJECT_BINARY_DIR}/packaging)
string(TIMESTAMP _date "%a, %d %b %Y %H:%M:%S +0000" UTC)

# vouch_package_docs(COMPONENT PACKAGE [EMBEDS DEBIAN_PACKAGE...]):
# copyright and changelog, which every Debian binary package carries in
# /usr/share/doc/<package>/. EMBEDS names the Debian packages whose static
# archives are linked into the package's binary: their copyright files
# (from /usr/share/doc, each distinct text once) are appended to ours,
# since the package does not depend on theirs.
function(vouch_package_docs component package)
  cmake_parse_arguments(ARG "" "" "EMBEDS" ${ARGN})
  set(VERSION ${PROJECT_VERSION})
  set(DATE ${_date})
  configure_file(${_deb}/changelog.in ${_pkgdir}/${package}/changelog @ONLY)
  add_custom_command(OUTPUT ${_pkgdir}/${package}/changelog.gz
    COMMAND gzip -n -9 -f -k ${_pkgdir}/${package}/changelog
    DEPENDS ${_pkgdir}/${package}/changelog)
  add_custom_target(vouch_${component}_changelog ALL
    DEPENDS ${_pkgdir}/${package}/changelog.gz)
  set(copyright ${_deb}/copyright)
  if(ARG_EMBEDS)
    file(READ ${_deb}/copyright text)
    string(APPEND text "\n${package} contains static copies of code from "
                       "the Debian packages below; their copyright files "
                       "follow.\n")
    set(seen "")
    foreach(embedded IN LISTS ARG_EMBEDS)
      set(file /usr/share/doc/${embedded}/copyright)
      if(NOT EXISTS ${file})
        message(FATAL_ERROR "${file} is missing: install ${embedded} "
                            "(scripts/deps.txt)")
      endif()
      file(READ ${file} theirs)
      string(SHA256 digest "${theirs}")
      if(digest IN_LIST seen)
        continue()
      endif()
      list(APPEND seen ${digest})
      string(APPEND text "\n-------- ${embedded} --------\n\n${theirs}")
    endforeach()
    set(copyright ${_pkgdir}/${package}/copyright)
    file(WRITE ${copyright} "${text}")
  endif()
  install(FILES ${copyright} ${_pkgdir}/${package}/changelog.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
endfunction()

# vouch_man_page(TARGET SECTION SUMMARY CONFIG COMPONENT): NAME.SECTION.gz
# from the binary's --help (cmake/VouchManPage.cmake).
function(vouch_man_page target section summary config component)
  set(out ${_pkgdir}/man/${target}.${section}.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:${target}> -DNAME=${target}
            -DSECTION=${section} -DVERSION=${PROJECT_VERSION}
            "-DSUMMARY=${summary}" -DCONFIG=${config} -DOUT=${out}
            -P ${PROJECT_SOURCE_DIR}/cmake/VouchManPage.cmake
    DEPENDS ${target} ${PROJECT_SOURCE_DIR}/cmake/VouchManPage.cmake)
  add_custom_target(${target}_man ALL DEPENDS ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
    COMPONENT ${component})
endfunction()

# vouch_daemon_package(NAME ROLE SUMMARY GROUPS PURGE_DIRS HOME): binary, its
# sample config as a conffile, its systemd unit, man page and maintainer
# scripts (system user vouch-NAME in GROUPS; PURGE_DIRS removed on purge).
function(vouch_daemon_package name role summary groups purge_dirs home)
  set(target vouch-${name})
  set(PACKAGE ${target})
  set(USER ${target})
  set(SERVICE ${target}.service)
  set(ROLE ${role})
  set(GROUPS ${groups})
  set(PURGE_DIRS ${purge_dirs})
  set(HOME ${home})
  install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    COMPONENT ${name})
  install(FILES ${PROJECT_SOURCE_DIR}/deploy/config/${name}.toml
    DESTINATION /etc/vouch COMPONENT ${name})
  # Debian 12 keeps units in /lib/systemd/system (not yet /usr/lib).
  install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/${target}.service
    DESTINATION /lib/systemd/system COMPONENT ${name})
  vouch_man_page(${target} 8 "${summary}" ${name} ${name})
  set(embeds "")
  if(name STREQUAL "agent" AND VOUCH_STATIC_AGENT)
    # The -dev packages of the archives src/agent/CMakeLists.txt links in.
    set(embeds EMBEDS ${VOUCH_STATIC_EMBEDS})
  endif()
  vouch_package_docs(${name} ${target} ${embeds})
  set(dir ${_pkgdir}/${target}/control)
  foreach(script postinst prerm postrm)
    configure_file(${_deb}/${script}.in ${dir}/${script} @ONLY
      FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                       GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  file(WRITE ${dir}/conffiles "/etc/vouch/${name}.toml\n")
  string(TOUPPER ${name} comp)
  set(CPACK_DEBIAN_${comp}_PACKAGE_NAME ${target} PARENT_SCOPE)
  set(CPACK_DEBIAN_${comp}_PACKAGE_CONTROL_EXTRA
    ${dir}/postinst ${dir}/prerm ${dir}/postrm ${dir}/conffiles PARENT_SCOPE)
endfunction()

vouch_daemon_package(agent "attestation agent"
  "Vouch TPM attestation agent"
  "tss" "/var/lib/vouch" "/var/lib/vouch")
vouch_daemon_package(verifier "verifier"
  "Vouch verifier, one member of a verifier pool"
  "" "" "/nonexistent")
vouch_daemon_package(registrar "registrar"
  "Vouch registrar for TPM agent identities"
  "" "" "/nonexistent")
set(_about "Vouch is a push-model remote attestation platform: machines with a
TPM 2.0 prove their identity and push quotes, measured-boot and IMA logs
to a pool of verifiers sharing PostgreSQL.")
set(CPACK_COMPONENT_AGENT_DESCRIPTION "Vouch TPM attestation agent
${_about}
.
This package runs the agent as a hardened systemd service (user
vouch-agent in group tss): it registers the machine's TPM with the
registrar and keeps pushing evidence to the verifier pool.")
set(CPACK_COMPONENT_VERIFIER_DESCRIPTION "Vouch verifier, one member of a verifier pool
${_about}
.
This package runs one verifier as a hardened systemd service: it takes
agents' attestation streams, verifies quotes, boot and IMA logs against
their policies, and serves the Admin API.")
set(CPACK_COMPONENT_REGISTRAR_DESCRIPTION "Vouch registrar for TPM agent identities
${_about}
.
This package runs the registrar as a hardened systemd service: it checks
EK certificates and activates AIK credentials.")

install(TARGETS vouchctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT vouchctl)
# vouchctl's page lists every command and its flags: the binary writes it
# from its own command tree (`vouchctl man DIR`, hidden).
set(_vouchctl_man ${_pkgdir}/man/vouchctl.1.gz)
add_custom_command(OUTPUT ${_vouchctl_man}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_pkgdir}/man
  COMMAND ${CMAKE_COMMAND} -E env HOME=~ $<TARGET_FILE:vouchctl> man ${_pkgdir}/man
  COMMAND gzip -n -9 -f ${_pkgdir}/man/vouchctl.1
  DEPENDS vouchctl)
add_custom_target(vouchctl_man ALL DEPENDS ${_vouchctl_man})
install(FILES ${_vouchctl_man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
  COMPONENT vouchctl)
set(_vouchctl_embeds "")
if(VOUCH_STATIC_VOUCHCTL)
  # The -dev packages of the archives src/tenant/CMakeLists.txt links in.
  set(_vouchctl_embeds EMBEDS ${VOUCH_STATIC_EMBEDS})
endif()
vouch_package_docs(vouchctl vouchctl ${_vouchctl_embeds})
vouch_package_docs(sdk libvouch-dev)

# --- CPack: one .deb per component -----------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vouch)
set(CPACK_PACKAGE_VENDOR "Vouch")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${VOUCH_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent verifier registrar vouchctl sdk)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${VOUCH_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the ELF files' libraries (dpkg-shlibdeps), plus what the
# maintainer scripts and units use.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser, tpm-udev")
set(CPACK_DEBIAN_VERIFIER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_REGISTRAR_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_VOUCHCTL_PACKAGE_NAME vouchctl)
set(CPACK_COMPONENT_VOUCHCTL_DESCRIPTION "Vouch operator command line
${_about}
.
vouchctl enrolls agents, manages policies, watches verdicts, runs a
certificate authority for the install and checks IMA logs, quotes and
boot logs offline.")
set(CPACK_DEBIAN_SDK_PACKAGE_NAME libvouch-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_SDK_DESCRIPTION "Vouch C++ client SDK (development files)
${_about}
.
This package holds the headers, static libraries and CMake package
(find_package(Vouch)) of the C++ client library for the Admin API.")
# Static libraries carry no shlibs: the -dev packages of what VouchConfig.cmake
# finds (find_dependency) are the SDK's dependencies.
set(CPACK_DEBIAN_SDK_PACKAGE_DEPENDS
  "libgrpc++-dev, libprotobuf-dev, libabsl-dev, libssl-dev, libcli11-dev")
include(CPack)
