# What `cmake --install` puts in a prefix (GNU layout), in two components:
#   runtime  bin/attnlab, the shared layers (BUILD_SHARED_LIBS), and
#            share/attnlab/{data,docs,README.md}
#   dev      include/attnlab/, the static layers, lib/cmake/attnlab/ (the
#            CMake package: attnlab::attnlab and one target per layer) and
#            lib/pkgconfig/attnlab.pc
# The Debian packages (cmake/package.cmake) are these two components.
include(CMakePackageConfigHelpers)
set(ATTNLAB_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/attnlab)

if(TARGET attnlab)
  install(TARGETS attnlab RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
endif()
install(TARGETS ${ATTNLAB_LAYERS} attnlab_library attnlab_openblas
        EXPORT attnlabTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
                NAMELINK_COMPONENT dev
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

# Public headers: every .hpp of each layer, copied from the layer's own folder
# (include/attnlab/<layer> is a symbolic link to it, which install(DIRECTORY)
# would copy as a link). tensor/kernels/ are Highway kernels compiled once per
# SIMD target inside the library: not part of the interface.
foreach(layer ${ATTNLAB_LAYERS})
  string(REGEX REPLACE "^attnlab_" "" dir ${layer})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attnlab/${dir}
          COMPONENT dev FILES_MATCHING PATTERN "*.hpp" PATTERN "kernels" EXCLUDE)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/include/attnlab/attnlab.hpp
              ${PROJECT_BINARY_DIR}/include/attnlab/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attnlab COMPONENT dev)

# The CMake package: find_package(attnlab CONFIG) → attnlab::attnlab.
install(EXPORT attnlabTargets NAMESPACE attnlab:: DESTINATION ${ATTNLAB_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/attnlabConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/attnlabConfig.cmake
                              INSTALL_DESTINATION ${ATTNLAB_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/attnlabConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/attnlabConfig.cmake ${PROJECT_BINARY_DIR}/attnlabConfigVersion.cmake
        DESTINATION ${ATTNLAB_CMAKE_DIR} COMPONENT dev)

# pkg-config: the layers from the highest down, then what they link. A static
# library's dependencies go in Libs/Requires (a program must link them too);
# a shared one's only in the .private fields.
set(ATTNLAB_PC_LIBS)
foreach(layer ${ATTNLAB_LAYERS})
  list(PREPEND ATTNLAB_PC_LIBS -l${layer})
endforeach()
list(JOIN ATTNLAB_PC_LIBS " " ATTNLAB_PC_LIBS)
if(BUILD_SHARED_LIBS)
  set(ATTNLAB_PC_REQUIRES "fmt")
  set(ATTNLAB_PC_REQUIRES_PRIVATE "libhwy libhwy-contrib openblas sentencepiece")
  set(ATTNLAB_PC_LIBS_PRIVATE "-fopenmp -pthread")
  set(ATTNLAB_PC_LIBS_EXTRA "")
else()
  set(ATTNLAB_PC_REQUIRES "fmt libhwy libhwy-contrib openblas sentencepiece")
  set(ATTNLAB_PC_REQUIRES_PRIVATE "")
  set(ATTNLAB_PC_LIBS_PRIVATE "")
  set(ATTNLAB_PC_LIBS_EXTRA " -fopenmp -pthread")
endif()
if(ATTNLAB_MPI)  # data-parallel training links OpenMPI
  string(APPEND ATTNLAB_PC_REQUIRES " mpi-c")
endif()
# prefix is found from the .pc file's own place, so a moved prefix still works.
file(RELATIVE_PATH ATTNLAB_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/attnlab.pc.in ${PROJECT_BINARY_DIR}/attnlab.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/attnlab.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# The bundled corpus and the documentation.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/ DESTINATION ${CMAKE_INSTALL_DATADIR}/attnlab/data
        COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/attnlab/docs
        COMPONENT runtime PATTERN "runs" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/attnlab COMPONENT runtime)

include(${CMAKE_CURRENT_LIST_DIR}/package.cmake)
