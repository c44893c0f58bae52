# Installation: cmake --install build --prefix P puts
#   P/bin/nessai-coordinator, P/bin/nessai-worker
#   P/include/nessai/model.h                   the model plugin ABI
#   P/lib/nessai-farm/lib<name>.so             the example models
#   P/lib/pkgconfig/nessai-farm.pc             cc $(pkg-config --cflags nessai-farm) ...
#   P/lib/cmake/nessai-farm/                   find_package(nessai-farm): nessai-farm::model
#   P/share/nessai-farm/deploy/                Slurm, HTCondor and systemd files for P
#   P/share/nessai-farm/examples/standalone/   a model project built against P only
# Every installed path is relative to P, so any prefix works, chosen at
# configure time (CMAKE_INSTALL_PREFIX) or at install time (--prefix).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(NESSAI_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/nessai-farm)
set(NESSAI_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nessai-farm)
set(NESSAI_DATA_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/nessai-farm)
file(RELATIVE_PATH NESSAI_PY_TO_BIN /${NESSAI_PLUGIN_INSTALL_DIR}/nessai_farm /${CMAKE_INSTALL_BINDIR})

# The plugin interface as a target: headers only, nothing to link.
add_library(nessai_model INTERFACE)
target_include_directories(nessai_model INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/common/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(nessai_model PROPERTIES EXPORT_NAME model)
add_library(nessai-farm::model ALIAS nessai_model)

install(TARGETS nessai-coordinator nessai-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# nessai-plot beside the coordinator, which runs it at the end of a run.
get_property(NESSAI_PLOT_FILE GLOBAL PROPERTY NESSAI_PLOT_PROGRAM)
install(PROGRAMS ${NESSAI_PLOT_FILE} DESTINATION ${CMAKE_INSTALL_BINDIR})
# Python models: the embedding plugin with the nessai_farm package beside it
# (the plugin puts its own directory on sys.path); the package's _paths.py
# names the installed coordinator.
install(TARGETS nessai_python LIBRARY DESTINATION ${NESSAI_PLUGIN_INSTALL_DIR})
install(DIRECTORY ${NESSAI_PYTHON_DIR}/nessai_farm DESTINATION ${NESSAI_PLUGIN_INSTALL_DIR}
  PATTERN "_paths.py" EXCLUDE PATTERN "__pycache__" EXCLUDE)
configure_file(${PROJECT_SOURCE_DIR}/cmake/_paths_installed.py.in
  ${PROJECT_BINARY_DIR}/installed/_paths.py @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/installed/_paths.py
  DESTINATION ${NESSAI_PLUGIN_INSTALL_DIR}/nessai_farm)
install(FILES ${PROJECT_SOURCE_DIR}/common/include/nessai/model.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nessai)
install(TARGETS nessai_model EXPORT nessai-farm-targets)
file(GLOB NESSAI_INSTALL_EXAMPLES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/examples/*.c)
# Every examples/*.c is a plugin target of examples/CMakeLists.txt (a file
# without one is a configure error here, not a plugin left out).
foreach(src ${NESSAI_INSTALL_EXAMPLES})
  get_filename_component(ex ${src} NAME_WE)
  install(TARGETS ${ex} LIBRARY DESTINATION ${NESSAI_PLUGIN_INSTALL_DIR})
endforeach()

# CMake package: targets, config and version files.
install(EXPORT nessai-farm-targets NAMESPACE nessai-farm:: DESTINATION ${NESSAI_CMAKE_INSTALL_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nessai-farmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nessai-farmConfig.cmake
  INSTALL_DESTINATION ${NESSAI_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR CMAKE_INSTALL_INCLUDEDIR NESSAI_PLUGIN_INSTALL_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nessai-farmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/nessai-farmConfig.cmake
  ${PROJECT_BINARY_DIR}/nessai-farmConfigVersion.cmake DESTINATION ${NESSAI_CMAKE_INSTALL_DIR})

# pkg-config: the prefix is found from the .pc file's own place.
file(RELATIVE_PATH NESSAI_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" NESSAI_PC_TO_PREFIX "${NESSAI_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/nessai-farm.pc.in ${PROJECT_BINARY_DIR}/nessai-farm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/nessai-farm.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The standalone model project, as a starting point for plugin authors.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/standalone
  DESTINATION ${NESSAI_DATA_INSTALL_DIR}/examples)

# Launchers, configured with the prefix of this installation: the one given
# to cmake --install --prefix, which is only known when installing.
install(CODE "
  set(NESSAI_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(NESSAI_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(NESSAI_PLUGINDIR \"\${CMAKE_INSTALL_PREFIX}/${NESSAI_PLUGIN_INSTALL_DIR}\")
  set(NESSAI_VERSION \"${PROJECT_VERSION}\")
  foreach(f nessai.slurm nessai.sub nessai-condor-coordinator.sh nessai-worker.service)
    configure_file(\"${PROJECT_SOURCE_DIR}/deploy/\${f}\" \"${PROJECT_BINARY_DIR}/deploy/\${f}\" @ONLY)
  endforeach()
  file(INSTALL \"${PROJECT_BINARY_DIR}/deploy/nessai.slurm\"
    \"${PROJECT_BINARY_DIR}/deploy/nessai-condor-coordinator.sh\"
    DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${NESSAI_DATA_INSTALL_DIR}/deploy\"
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                     WORLD_READ WORLD_EXECUTE)
  file(INSTALL \"${PROJECT_BINARY_DIR}/deploy/nessai.sub\"
    \"${PROJECT_BINARY_DIR}/deploy/nessai-worker.service\"
    DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${NESSAI_DATA_INSTALL_DIR}/deploy\")
")
