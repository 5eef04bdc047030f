# SPDX-License-Identifier: Apache-2.0
# `cmake --install BUILD [--prefix P]` puts each piece where systemd/ctfs@.service expects it:
#   P/bin/ctfs                                   the binary (mode 0755)
#   P/lib/systemd/system/ctfs@.service           the unit, its paths rewritten for P
#                                                (CTFS_SYSTEMD_UNIT_DIR overrides the folder)
#   P/libexec/ctfs/ctfs-{tang,kmip}-helper       the key helpers for exec key sources (mode 0755)
#   P/share/doc/ctfs/                            README.md, systemd/README.md (the unit's
#                                                Documentation=), examples/ctfs.yaml (the
#                                                commented config) and the drop-in for an
#                                                encrypted credential
#   /etc/ctfs/                                   made with mode 0700 if missing: the unit reads
#                                                /etc/ctfs/<instance>.yaml and .jwk from there
# DESTDIR=D is honoured for all of them (D/etc/ctfs too). Nothing is started or enabled.
include(GNUInstallDirs)

set(CTFS_SYSTEMD_UNIT_DIR "" CACHE PATH
    "Where the unit goes (default: PREFIX/lib/systemd/system, a folder systemd searches for /usr and /usr/local)")
set(CTFS_CONFIG_DIR "/etc/ctfs" CACHE PATH "The folder the unit reads instance configs and keys from")

install(TARGETS ctfs RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS deploy/helpers/ctfs-tang-helper deploy/helpers/ctfs-kmip-helper
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/ctfs)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES systemd/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/systemd)
install(FILES config/example.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples RENAME ctfs.yaml)
install(FILES systemd/credential-encrypted.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY DESTINATION ${CTFS_CONFIG_DIR}
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

# The unit names the binary and the docs by absolute path: rewritten at install time, so that
# `--prefix` given to `cmake --install` is the one the unit names.
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(unit_dir \"${CTFS_SYSTEMD_UNIT_DIR}\")
  if(unit_dir STREQUAL \"\")
    set(unit_dir \"\${prefix}/lib/systemd/system\")
  endif()
  file(READ \"${CMAKE_CURRENT_SOURCE_DIR}/systemd/ctfs@.service\" unit)
  string(REPLACE \"/usr/local/bin/ctfs\" \"\${prefix}/${CMAKE_INSTALL_BINDIR}/ctfs\" unit \"\${unit}\")
  string(REPLACE \"/usr/local/share/doc/ctfs\" \"\${prefix}/${CMAKE_INSTALL_DOCDIR}\" unit \"\${unit}\")
  string(REPLACE \"/etc/ctfs/\" \"${CTFS_CONFIG_DIR}/\" unit \"\${unit}\")
  set(out \"\$ENV{DESTDIR}\${unit_dir}/ctfs@.service\")
  message(STATUS \"Installing: \${out}\")
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${unit_dir}\")
  file(WRITE \"\${out}\" \"\${unit}\")
  file(CHMOD \"\${out}\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
")
